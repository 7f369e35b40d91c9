//! A run that fails while the machine is being built (after the serial log
//! and the packet capture were opened) leaves neither file behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::UdpSocket;

use common::{TempDir, assert_one_line_error, kvm_available, seraph_v, write_guest};

#[test]
fn a_port_in_use_leaves_no_serial_log_or_capture() {
    if !kvm_available("a_port_in_use_leaves_no_serial_log_or_capture") {
        return;
    }
    let dir = TempDir::new();
    let kernel = write_guest(&dir, "ping.elf", seraph_guests::AETHER_PING);
    let kernel = kernel.to_str().unwrap();
    let before = dir.files();
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let net = format!("dgram,local=127.0.0.1:{port},remote=127.0.0.1:9");
    let serial = dir.path("serial.log");
    let capture = dir.path("frames.pcap");
    let serial_arg = format!("file:{}", serial.display());
    let out = seraph_v(
        &dir,
        &[
            "--no-screenshot",
            "--serial",
            &serial_arg,
            "--net",
            &net,
            "--net-capture",
            capture.to_str().unwrap(),
            kernel,
        ],
    );
    assert_one_line_error(&dir, &out, 71, &format!("127.0.0.1:{port}"), &before);
    assert!(!serial.exists() && !capture.exists());
}

#[test]
fn a_failed_run_keeps_a_serial_log_that_was_there_before() {
    if !kvm_available("a_failed_run_keeps_a_serial_log_that_was_there_before") {
        return;
    }
    let dir = TempDir::new();
    let kernel = write_guest(&dir, "ping.elf", seraph_guests::AETHER_PING);
    let serial = dir.path("serial.log");
    std::fs::write(&serial, b"old").unwrap();
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let net = format!("dgram,local=127.0.0.1:{port},remote=127.0.0.1:9");
    let serial_arg = format!("file:{}", serial.display());
    let out = seraph_v(
        &dir,
        &[
            "--no-screenshot",
            "--serial",
            &serial_arg,
            "--net",
            &net,
            kernel.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(71), "{}", common::stderr(&out));
    assert!(serial.exists(), "a file the user had is not removed");
}
