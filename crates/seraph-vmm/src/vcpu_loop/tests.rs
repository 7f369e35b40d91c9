//! Tests of the vCPU loop against a scripted fake vCPU (written below).
