//! KVM backend (being written).
