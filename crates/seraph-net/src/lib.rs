//! Packet backends for Seraph-V NICs: UDP datagram links, TAP devices, pcap capture.
