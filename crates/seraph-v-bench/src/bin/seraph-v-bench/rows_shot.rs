//! Measurement 6: saving the demo's 1024x768 picture as BMP and PNG.

use std::path::Path;

use seraph_v_bench::BenchError;
use seraph_v_bench::shot;

use crate::bench::{Bench, Paths};

impl Bench {
    pub fn screenshots(&mut self, paths: &Paths) -> Result<(), BenchError> {
        let (pixels, geometry) = shot::test_picture()?;
        let bmp = paths.bench_dir.join("shot.bmp");
        let png = paths.bench_dir.join("shot.png");
        let reps = self.reps(11, 3);
        let (mut bmp_ms, mut png_ms) = (Vec::new(), Vec::new());
        let (mut bmp_size, mut png_size) = (0, 0);
        for rep in 0..reps {
            let one = |path: &Path| shot::save_once(path, &pixels, &geometry);
            if rep % 2 == 0 {
                let (ns, size) = one(&bmp)?;
                bmp_ms.push(ns / 1e6);
                bmp_size = size;
                let (ns, size) = one(&png)?;
                png_ms.push(ns / 1e6);
                png_size = size;
            } else {
                let (ns, size) = one(&png)?;
                png_ms.push(ns / 1e6);
                png_size = size;
                let (ns, size) = one(&bmp)?;
                bmp_ms.push(ns / 1e6);
                bmp_size = size;
            }
        }
        self.row(
            "6 screenshot 1024x768",
            "BMP (save_screenshot)",
            "ms",
            &bmp_ms,
        );
        self.row(
            "6 screenshot 1024x768",
            "PNG (save_screenshot)",
            "ms",
            &png_ms,
        );
        self.report.notes.push(format!(
            "screenshot files: BMP {bmp_size} bytes, PNG {png_size} bytes (the demo kernel's test picture)"
        ));
        Ok(())
    }
}
