//! An NVMe controller model backed by a block image.
