//! The page in headless Chromium, driven through the DevTools protocol:
//! pixels of the page's screenshot against the framebuffer, a change seen
//! in a second screenshot, keys to the keyboard and text to the serial port.
//!
//! Needs Chromium (`/usr/bin/chromium`, or `SERAPH_CHROMIUM`): without it
//! the test fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Synthetic, start};
use seraph_display::testing::{Cdp, close_enough, launch, pixel};
use seraph_display::{DisplayConfig, Status};
use serde_json::json;

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
