//! Live display in the browser: an HTTP/WebSocket server showing the framebuffer and console, taking keyboard input.
