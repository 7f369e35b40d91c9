//! The Aether NIC: an Intel 82540EM (e1000) compatible network card model.
