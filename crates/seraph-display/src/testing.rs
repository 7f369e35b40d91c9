//! Test support: headless Chromium driven through the DevTools protocol
//! (a page's screenshot, key events, JavaScript), for this crate's tests
//! and for tests of VMMs that serve the display. Only with the `testing`
//! feature; panics on failure, as test code does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// A DevTools protocol connection to one target.
pub struct Cdp {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl std::fmt::Debug for Cdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cdp")
            .field("next_id", &self.next_id)
            .finish()
    }
}

impl Cdp {
    /// Connects to a DevTools WebSocket URL.
    pub fn connect(url: &str) -> Self {
        let (ws, _) = tungstenite::connect(url).unwrap_or_else(|e| panic!("DevTools {url}: {e}"));
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        }
        Self { ws, next_id: 1 }
    }

    /// Calls `method` and returns its `result` (events in between are skipped).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({ "id": id, "method": method, "params": params });
        self.ws.send(Message::text(msg.to_string())).unwrap();
        loop {
            let reply = self.ws.read().unwrap_or_else(|e| panic!("{method}: {e}"));
            let Message::Text(text) = reply else { continue };
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            if v["id"] == json!(id) {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluates a JavaScript expression and returns its value.
    pub fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        r["result"]["value"].clone()
    }

    /// Evaluates `expression` until it is true.
    pub fn wait_for(&mut self, expression: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.eval(expression) != json!(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A screenshot as (width, height, RGBA pixels).
    pub fn screenshot(&mut self) -> (u32, u32, Vec<u8>) {
        let r = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let png_bytes = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::ALPHA);
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgba);
        (info.width, info.height, buf)
    }

    /// Sends one key event (`keyDown`, `rawKeyDown`, `keyUp`).
    pub fn key(&mut self, kind: &str, code: &str, key: &str, vk: u32, text: Option<&str>) {
        let mut p = json!({
            "type": kind, "code": code, "key": key,
            "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk,
        });
        if let Some(t) = text {
            p["text"] = json!(t);
        }
        self.call("Input.dispatchKeyEvent", p);
    }

    /// Presses and releases a key.
    pub fn press(&mut self, code: &str, key: &str, vk: u32, text: Option<&str>) {
        self.key(
            if text.is_some() {
                "keyDown"
            } else {
                "rawKeyDown"
            },
            code,
            key,
            vk,
            text,
        );
        self.key("keyUp", code, key, vk, None);
    }
}

/// Chromium with its profile in a temporary directory; killed and cleaned on drop.
pub struct Browser {
    child: Child,
    profile: PathBuf,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("profile", &self.profile)
            .finish()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Where Chromium is (`SERAPH_CHROMIUM` or /usr/bin/chromium); panics with
/// a message saying how to install it when it is missing.
pub fn chromium_path() -> PathBuf {
    let path = std::env::var_os("SERAPH_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "Chromium not found at {} (install the Debian package `chromium` or set SERAPH_CHROMIUM)",
        path.display()
    );
    path
}

/// Starts headless Chromium: the browser, its DevTools address and browser path.
pub fn launch() -> (Browser, String, String) {
    static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile = std::env::temp_dir().join(format!(
        "seraph-display-chromium-{}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).unwrap();
    let child = Command::new(chromium_path())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--window-size=1400,900",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start Chromium: {e}"));
    let browser = Browser { child, profile };
    let (port, path) = devtools_port(&browser.profile);
    (browser, format!("127.0.0.1:{port}"), path)
}

/// The port and browser path Chromium writes into `DevToolsActivePort` once it listens.
fn devtools_port(profile: &Path) -> (u16, String) {
    let file = profile.join("DevToolsActivePort");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut lines = text.lines();
            let port = lines.next().and_then(|l| l.trim().parse().ok());
            let path = lines.next().map(|l| l.trim().to_owned());
            if let (Some(port), Some(path)) = (port, path) {
                return (port, path);
            }
        }
        assert!(
            Instant::now() < deadline,
            "Chromium never wrote {}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The RGB pixel at (x, y) of a screenshot.
pub fn pixel(shot: &(u32, u32, Vec<u8>), x: u32, y: u32) -> [u8; 3] {
    let at = ((y * shot.0 + x) * 4) as usize;
    [shot.2[at], shot.2[at + 1], shot.2[at + 2]]
}

/// True if two RGB pixels differ by at most 2 per channel.
pub fn close_enough(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 2)
}

/// Opens `url` in a fresh page of `devtools` (from [`launch`]) at 1400x900
/// and returns the page's DevTools connection.
pub fn open_page(devtools: &str, browser_path: &str, url: &str) -> (Cdp, Cdp) {
    let mut browser = Cdp::connect(&format!("ws://{devtools}{browser_path}"));
    let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }));
    let id = target["targetId"].as_str().unwrap().to_owned();
    let mut page = Cdp::connect(&format!("ws://{devtools}/devtools/page/{id}"));
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": false }),
    );
    page.call("Page.enable", json!({}));
    page.call("Page.navigate", json!({ "url": url }));
    (browser, page)
}

/// The page's canvas position (left, top) and size (width, height), in CSS pixels.
pub fn canvas_rect(page: &mut Cdp) -> (u32, u32, u32, u32) {
    let rect = page.eval(
        "(() => { const r = document.getElementById('screen').getBoundingClientRect();\
         return [r.left, r.top, r.width, r.height]; })()",
    );
    let r: Vec<f64> = serde_json::from_value(rect).unwrap();
    (
        r[0].round() as u32,
        r[1].round() as u32,
        r[2].round() as u32,
        r[3].round() as u32,
    )
}
