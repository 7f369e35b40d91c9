//! The TAP backend against the host kernel's own ARP, inside a network
//! namespace the test creates: the test binary re-runs itself under
//! `unshare -n`, so the TAP, its address and every frame stay in that
//! namespace and the machine's interfaces are never touched.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::Driver;
use seraph_net::{NetError, NetSpec, attach};

const INSIDE: &str = "SERAPH_NET_TEST_IN_NETNS";
const MAC: [u8; 6] = [0x02, 0x53, 0x45, 0x52, 0x00, 0x09];

/// Runs test `name` of this binary again inside a new network namespace.
fn rerun_in_namespace(name: &str) {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .arg("-n")
        .arg(&exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .output()
        .expect("unshare runs (util-linux)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "the inner test ran: {text}");
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn arp_request(sender_ip: [u8; 4], target_ip: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xFF; 6];
    f.extend_from_slice(&MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&MAC);
    f.extend_from_slice(&sender_ip);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target_ip);
    f.resize(60, 0);
    f
}

#[test]
fn frames_reach_the_host_stack_and_its_arp_reply_comes_back() {
    if std::env::var(INSIDE).is_err() {
        rerun_in_namespace("frames_reach_the_host_stack_and_its_arp_reply_comes_back");
        return;
    }
    ip(&["link", "set", "lo", "up"]);
    let mut card = Driver::new(MAC);
    let spec = NetSpec::parse("tap,ifname=svnet0,mac=02:53:45:52:00:09").unwrap();
    let mut handle = attach(&spec, None, card.card.clone()).unwrap();
    assert_eq!(handle.describe(), "tap svnet0");
    // seraph-net created the interface; the host side gets an address.
    ip(&["addr", "add", "10.98.0.1/24", "dev", "svnet0"]);
    ip(&["link", "set", "svnet0", "up"]);
    card.bring_up(true);
    let mut reply = None;
    for _ in 0..50 {
        card.send(&arp_request([10, 98, 0, 2], [10, 98, 0, 1]));
        if let Some(f) = card.recv(Duration::from_millis(200)) {
            // The host may also send its own frames (IPv6 router solicitations): keep ARP replies.
            if f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[20..22] == [0, 2] {
                reply = Some(f);
                break;
            }
        }
    }
    let reply = reply.expect("the host kernel answers ARP through the TAP");
    assert_eq!(&reply[..6], &MAC, "to the card");
    assert_eq!(
        &reply[28..32],
        &[10, 98, 0, 1],
        "sender IP is the host side"
    );
    assert_eq!(&reply[32..38], &MAC, "target MAC is the card");
    assert!(handle.stats().tx_frames.load(Ordering::Relaxed) >= 1);
    assert!(handle.stats().rx_frames.load(Ordering::Relaxed) >= 1);
    handle.shutdown();
    assert!(!handle.is_open());
}

#[test]
fn without_cap_net_admin_the_error_says_so() {
    if std::env::var(INSIDE).is_err() {
        // Inside a namespace, without CAP_NET_ADMIN in the bounding set.
        let exe = std::env::current_exe().unwrap();
        let out = Command::new("unshare")
            .args([
                "-n",
                "setpriv",
                "--bounding-set",
                "-net_admin",
                "--inh-caps",
                "-net_admin",
            ])
            .arg(&exe)
            .args([
                "--exact",
                "without_cap_net_admin_the_error_says_so",
                "--nocapture",
            ])
            .env(INSIDE, "1")
            .output()
            .expect("unshare and setpriv run (util-linux)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "the inner test ran: {text}");
        return;
    }
    let card = Driver::new(MAC);
    let spec = NetSpec::parse("tap,ifname=svnet1").unwrap();
    let err = attach(&spec, None, card.card.clone()).unwrap_err();
    assert!(matches!(err, NetError::TapPermission { .. }), "{err}");
    assert_eq!(err.exit_code(), 77);
    let text = err.to_string();
    assert!(
        text.contains("svnet1") && text.contains("ip tuntap add"),
        "{text}"
    );
}
