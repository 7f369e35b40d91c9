//! The page in headless Chromium, driven through the DevTools protocol:
//! pixels of the page's screenshot against the framebuffer, a change seen
//! in a second screenshot, keys to the keyboard and text to the serial port.
//!
//! Needs Chromium (`/usr/bin/chromium`, or `SERAPH_CHROMIUM`): without it
//! the test fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{Synthetic, start};
use seraph_display::{DisplayConfig, Status};
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// A DevTools protocol connection to one target.
struct Cdp {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Cdp {
    fn connect(url: &str) -> Self {
        let (ws, _) = tungstenite::connect(url).unwrap_or_else(|e| panic!("DevTools {url}: {e}"));
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        }
        Self { ws, next_id: 1 }
    }

    /// Calls `method` and returns its `result` (events in between are skipped).
    fn call(&mut self, method: &str, params: Value) -> Value {
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

    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        r["result"]["value"].clone()
    }

    /// Evaluates `expression` until it is true.
    fn wait_for(&mut self, expression: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.eval(expression) != json!(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A screenshot as (width, height, RGBA pixels).
    fn screenshot(&mut self) -> (u32, u32, Vec<u8>) {
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

    fn key(&mut self, kind: &str, code: &str, key: &str, vk: u32, text: Option<&str>) {
        let mut p = json!({
            "type": kind, "code": code, "key": key,
            "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk,
        });
        if let Some(t) = text {
            p["text"] = json!(t);
        }
        self.call("Input.dispatchKeyEvent", p);
    }

    fn press(&mut self, code: &str, key: &str, vk: u32, text: Option<&str>) {
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
struct Browser {
    child: Child,
    profile: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn chromium_path() -> PathBuf {
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

fn launch() -> (Browser, String, String) {
    let profile =
        std::env::temp_dir().join(format!("seraph-display-chromium-{}", std::process::id()));
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

fn pixel(shot: &(u32, u32, Vec<u8>), x: u32, y: u32) -> [u8; 3] {
    let at = ((y * shot.0 + x) * 4) as usize;
    [shot.2[at], shot.2[at + 1], shot.2[at + 2]]
}

fn close_enough(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 2)
}

#[test]
fn the_page_in_chromium_shows_the_frame_and_sends_input() {
    let src = Synthetic::new(320, 200, 8, Synthetic::pattern);
    let (handle, input) = start(&src, DisplayConfig::default());
    let page_url = handle.url();
    let (_browser, devtools, browser_path) = launch();

    // A fresh page target, driven directly.
    let mut browser = Cdp::connect(&format!("ws://{devtools}{browser_path}"));
    let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }));
    let id = target["targetId"].as_str().unwrap().to_owned();
    let mut page = Cdp::connect(&format!("ws://{devtools}/devtools/page/{id}"));
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": false }),
    );
    page.call("Page.enable", json!({}));
    page.call("Page.navigate", json!({ "url": page_url }));
    page.wait_for(
        "!!(window.seraph && window.seraph.updates > 0)",
        "the first frame",
    );
    let rect = page.eval(
        "(() => { const r = document.getElementById('screen').getBoundingClientRect();\
         return [r.left, r.top, r.width, r.height]; })()",
    );
    let r: Vec<f64> = serde_json::from_value(rect).unwrap();
    assert_eq!((r[2], r[3]), (320.0, 200.0), "the canvas is shown 1:1");
    let (ox, oy) = (r[0].round() as u32, r[1].round() as u32);

    let shot = page.screenshot();
    let mut checked = 0;
    for y in (0..200).step_by(13) {
        for x in (0..320).step_by(17) {
            let seen = pixel(&shot, ox + x, oy + y);
            assert!(
                close_enough(seen, src.rgb(x, y)),
                "pixel {x},{y}: page {seen:?}, frame {:?}",
                src.rgb(x, y)
            );
            checked += 1;
        }
    }
    assert!(checked > 200);

    // The guest draws: the second look shows it, and the rest is as it was.
    let updates = page.eval("window.seraph.updates").as_u64().unwrap();
    src.fill(100, 50, 40, 30, [0x20, 0xC0, 0xF0, 0]);
    page.wait_for(&format!("window.seraph.updates > {updates}"), "the change");
    let shot = page.screenshot();
    assert!(close_enough(
        pixel(&shot, ox + 120, oy + 60),
        [0xF0, 0xC0, 0x20]
    ));
    assert!(close_enough(
        pixel(&shot, ox + 99, oy + 60),
        src.rgb(99, 60)
    ));
    assert!(close_enough(
        pixel(&shot, ox + 141, oy + 81),
        src.rgb(141, 81)
    ));

    // Console output and status reach the pane.
    handle.console(b"hello from \x1b[1;3");
    handle.console(b"1mCOM1\x1b[0m\r\n");
    handle.set_status(Status::Idle);
    page.wait_for(
        "document.getElementById('console').textContent.includes('hello from COM1')",
        "console text",
    );
    page.wait_for(
        "document.getElementById('status').textContent.startsWith('idle')",
        "the idle status",
    );
    assert_eq!(
        page.eval("document.getElementById('console').textContent"),
        json!("hello from COM1\n"),
        "escape sequences are not shown, even split across messages"
    );

    // Keys on the screen go to the keyboard as KeyboardEvent.code names.
    page.eval("document.getElementById('screen').focus()");
    page.key("rawKeyDown", "ShiftLeft", "Shift", 16, None);
    page.press("KeyH", "H", 72, Some("H"));
    page.key("keyUp", "ShiftLeft", "Shift", 16, None);
    page.press("Enter", "Enter", 13, Some("\r"));
    page.press("ArrowUp", "ArrowUp", 38, None);
    let want: Vec<(String, bool)> = [
        ("ShiftLeft", true),
        ("KeyH", true),
        ("KeyH", false),
        ("ShiftLeft", false),
        ("Enter", true),
        ("Enter", false),
        ("ArrowUp", true),
        ("ArrowUp", false),
    ]
    .iter()
    .map(|(c, p)| ((*c).to_owned(), *p))
    .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while input.keys.lock().unwrap().len() < want.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(*input.keys.lock().unwrap(), want);

    // Text typed in the console pane goes to the serial port.
    page.eval("document.getElementById('console').focus()");
    page.press("KeyO", "o", 79, Some("o"));
    page.press("KeyK", "k", 75, Some("k"));
    page.press("Enter", "Enter", 13, Some("\r"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while input.serial.lock().unwrap().len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(*input.serial.lock().unwrap(), b"ok\r");
    assert_eq!(
        input.keys.lock().unwrap().len(),
        want.len(),
        "no keys from the console pane"
    );

    // The power button.
    page.eval("document.getElementById('power').click()");
    let deadline = Instant::now() + Duration::from_secs(10);
    while input.power_offs.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "power off never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = browser.call("Browser.close", json!({}));
    handle.shutdown();
}
