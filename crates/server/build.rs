//! Lists the demo app's built files (`clients/demo/dist/`, committed) for
//! `src/demo.rs` to embed: the file names carry content hashes, so the list
//! follows whatever `node clients/demo/build.mjs` produced.

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let dist = manifest.join("../../clients/demo/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let dist = dist.canonicalize().unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run `node clients/demo/build.mjs`)",
            dist.display()
        )
    });
    let mut names: Vec<String> = fs::read_dir(&dist)
        .expect("read clients/demo/dist")
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    assert!(
        names.iter().any(|n| n == "index.html"),
        "clients/demo/dist has no index.html (run `node clients/demo/build.mjs`)"
    );
    let mut out = String::from("&[\n");
    for name in &names {
        let path = dist.join(name);
        out.push_str(&format!(
            "    ({name:?}, include_bytes!({:?}) as &[u8]),\n",
            path.display().to_string()
        ));
    }
    out.push_str("]\n");
    let dest = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("demo_files.rs");
    fs::write(dest, out).expect("write demo_files.rs");
}
