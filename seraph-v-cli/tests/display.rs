//! The live display with a real guest: `--display web` serves the page,
//! headless Chromium shows the guest's framebuffer (pixels checked against
//! what the guest drew), a second look shows what it drew after a key, keys
//! typed in the page reach the guest's PS/2 keyboard, its COM1 lines reach
//! the console pane, and the run ends on the guest's EXIT.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{TempDir, command, first_stderr_line, kvm_available, line_receiver, write_guest};
use seraph_display::testing::{canvas_rect, chromium_path, close_enough, launch, open_page, pixel};

#[test]
fn the_page_shows_the_guest_and_types_into_it() {
    if !kvm_available("display_real_guest") {
        return;
    }
    // Chromium is checked before the VM starts: a missing one orphans no VM.
    chromium_path();
    let dir = TempDir::new();
    let guest = write_guest(&dir, "kbd.elf", seraph_guests::DISPLAY_KBD);
    let mut vm = command(
        &dir,
        &[
            guest.to_str().unwrap(),
            "--display",
            "web",
            "--no-screenshot",
            "--timeout",
            "120s",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let (line, mut err) = first_stderr_line(&mut vm);
    let url = line
        .strip_prefix("seraph-v: display on ")
        .unwrap_or_else(|| panic!("expected the display URL first, got {line:?}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    // stdout: COM1 lines, read on a thread.
    let rx = line_receiver(vm.stdout.take().unwrap());
    let wait_line = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l == want => return,
                Ok(_) => {}
                Err(_) => panic!("no {want:?} on COM1"),
            }
        }
    };
    wait_line("display-kbd: ready");

    let (_chromium, devtools, browser_path) = launch();
    let (_browser, mut page) = open_page(&devtools, &browser_path, &url);
    page.wait_for(
        "!!(window.seraph && window.seraph.updates > 0)",
        "the first frame",
    );
    let (ox, oy, w, h) = canvas_rect(&mut page);
    assert_eq!((w, h), (1024, 768), "the canvas shows the framebuffer 1:1");
    page.wait_for(
        "document.getElementById('console').textContent.includes('display-kbd: ready')",
        "the guest's COM1 line in the console pane",
    );
    let shot = page.screenshot();
    for (x, y, rgb) in [
        (100, 100, [0xFF, 0, 0]),
        (900, 100, [0, 0xFF, 0]),
        (100, 700, [0, 0, 0xFF]),
        (900, 700, [0xFF, 0xFF, 0xFF]),
    ] {
        let seen = pixel(&shot, ox + x, oy + y);
        assert!(
            close_enough(seen, rgb),
            "({x},{y}): page {seen:?}, guest drew {rgb:?}"
        );
    }
    // The centre is still white before any key.
    assert!(close_enough(
        pixel(&shot, ox + 512, oy + 384),
        [0xFF, 0xFF, 0xFF]
    ));

    // A key typed on the screen: PS/2 set 1 make code 0x1e for 'A'.
    let updates = page.eval("window.seraph.updates").as_u64().unwrap();
    page.eval("document.getElementById('screen').focus()");
    page.press("KeyA", "a", 65, Some("a"));
    wait_line("display-kbd: key 0x000000000000001e");
    page.wait_for(
        &format!("window.seraph.updates > {updates}"),
        "the square the guest drew",
    );
    let shot = page.screenshot();
    let centre = pixel(&shot, ox + 512, oy + 384);
    assert!(close_enough(centre, [0xFF, 0xFF, 0]), "centre {centre:?}");
    assert!(close_enough(pixel(&shot, ox + 100, oy + 100), [0xFF, 0, 0]));

    // Escape ends the run with the guest's status.
    page.press("Escape", "Escape", 27, None);
    let status = vm.wait().unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    assert!(rest.contains("guest exited with status 0"), "{rest}");
}

#[test]
fn with_a_display_an_idle_guest_stays_up_until_stopped() {
    if !kvm_available("display_keeps_idle_guest") {
        return;
    }
    let dir = TempDir::new();
    let guest = write_guest(&dir, "idle.elf", seraph_guests::IDLE_LOOP);
    let out = command(
        &dir,
        &[
            guest.to_str().unwrap(),
            "--display",
            "web",
            "--no-screenshot",
            "--timeout",
            "2s",
        ],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Without a display this guest ends idle at once; with one it stays
    // up until the timeout.
    assert_eq!(out.status.code(), Some(124), "{err}");
    assert!(err.contains("timeout after 2.000s"), "{err}");
}
