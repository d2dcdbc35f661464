//! The message test vectors of `tests/vectors/` (made by `cargo run
//! --example gen_vectors`; format in `docs/protocol.md`, "Test vectors"),
//! read for the tests that check an implementation against them: this
//! crate (`tests/vectors.rs`) and the browser library
//! (`tests/browser_sign.rs`).

use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The feed head a vector is validated against.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadVector {
    pub sequence: u64,
    pub id: String,
}

/// One entry of `messages.json`: the inputs, then the expected outputs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidVector {
    pub name: String,
    pub description: String,
    pub seed_hex: String,
    pub sequence: u64,
    pub previous: Option<String>,
    pub timestamp: i64,
    pub content: String,
    pub content_dropped: bool,
    pub head: Option<HeadVector>,
    pub header_hex: String,
    pub signature_hex: String,
    pub message_hex: String,
    pub id: String,
    pub author: String,
}

/// The vectors of `tests/vectors/FILE`.
pub fn load<T: DeserializeOwned>(file: &str) -> Vec<T> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// The valid message vectors, `messages.json`.
pub fn valid_vectors() -> Vec<ValidVector> {
    let vectors: Vec<ValidVector> = load("messages.json");
    assert!(vectors.len() >= 5, "too few valid vectors");
    vectors
}
