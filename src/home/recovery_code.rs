//! The recovery code: a key's 32-byte seed in a form a person can write
//! down and type back (docs/browser-keys.md, "Export").
//!
//! The seed and a 3-byte check (the first bytes of
//! `BLAKE3("potluck-recovery-v1:" || seed)`), 35 bytes in RFC 4648 base32
//! without padding: 56 characters, shown in 14 groups of 4 joined by `-`.
//! The browser's `feed.js` writes it; this module reads it for `potluck
//! init --import-key`, and writes it for tests and any later export. The
//! check catches a mistyped character before a wrong key is taken: a
//! wrong key would be a stranger's feed, not a typo anyone notices.

/// RFC 4648 base32's alphabet.
const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// What the check hashes before the seed, so that the check of a
/// recovery code is never some other hash of the same bytes.
const CHECK_TAG: &[u8] = b"potluck-recovery-v1:";

/// Bytes of the check after the seed.
const CHECK_LEN: usize = 3;

/// Characters of a code, dashes and spaces aside.
pub const CODE_LEN: usize = 56;

/// The check of `seed`.
fn check(seed: &[u8; 32]) -> [u8; CHECK_LEN] {
    let hash = blake3::hash(&[CHECK_TAG, seed.as_slice()].concat());
    let mut out = [0; CHECK_LEN];
    out.copy_from_slice(&hash.as_bytes()[..CHECK_LEN]);
    out
}

/// The recovery code of `seed`, in groups of 4 (`MFRG-GZDF-…`).
pub fn encode(seed: &[u8; 32]) -> String {
    let data = [seed.as_slice(), &check(seed)].concat();
    let mut digits = Vec::with_capacity(CODE_LEN);
    let (mut acc, mut bits) = (0u32, 0u32);
    for byte in data {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            digits.push(ALPHABET[((acc >> bits) & 31) as usize]);
        }
        acc &= (1 << bits) - 1;
    }
    digits
        .chunks(4)
        .map(|group| String::from_utf8_lossy(group).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// The seed in a recovery code. Case, spaces and dashes are ignored, as
/// the page says; the error says what is wrong, for people.
pub fn decode(code: &str) -> Result<[u8; 32], String> {
    let digits: Vec<u8> = code
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'-')
        .map(|b| b.to_ascii_uppercase())
        .collect();
    if digits.len() != CODE_LEN {
        return Err(format!(
            "a recovery code has {CODE_LEN} letters and digits (dashes and spaces aside), this one {}",
            digits.len()
        ));
    }
    let mut data = Vec::with_capacity(32 + CHECK_LEN);
    let (mut acc, mut bits) = (0u32, 0u32);
    for digit in digits {
        let Some(value) = ALPHABET.iter().position(|&a| a == digit) else {
            return Err(format!(
                "`{}` is not in a recovery code, which has only the letters A to Z and the digits 2 to 7",
                char::from(digit).escape_default()
            ));
        };
        acc = ((acc << 5) | value as u32) & 0xfff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            data.push(((acc >> bits) & 0xff) as u8);
        }
    }
    let mut seed = [0; 32];
    seed.copy_from_slice(&data[..32]);
    if data[32..] != check(&seed) {
        return Err(
            "this recovery code has a typo: its check does not match (compare it with the code \
             the page showed, character by character)"
                .into(),
        );
    }
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_reads_back_whatever_its_case_spaces_and_dashes() {
        let seed = [7u8; 32];
        let code = encode(&seed);
        let groups: Vec<&str> = code.split('-').collect();
        assert_eq!(groups.len(), 14, "{code}");
        assert!(groups.iter().all(|g| g.len() == 4), "{code}");
        assert_eq!(decode(&code), Ok(seed));
        let loose = format!("  {}\n", code.to_lowercase().replace('-', " "));
        assert_eq!(decode(&loose), Ok(seed));
    }

    #[test]
    fn a_typo_a_foreign_character_and_a_short_code_are_refused() {
        let code = encode(&[9u8; 32]);
        // Each character changed in turn: the check catches every one.
        for at in (0..code.len()).filter(|&i| code.as_bytes()[i] != b'-') {
            let mut typo = code.clone().into_bytes();
            typo[at] = if typo[at] == b'A' { b'B' } else { b'A' };
            let typo = String::from_utf8(typo).unwrap();
            let error = decode(&typo).unwrap_err();
            assert!(error.contains("typo"), "{typo}: {error}");
        }
        let error = decode(&code.replacen(|c: char| c.is_ascii_alphabetic(), "1", 1)).unwrap_err();
        assert!(error.contains("`1`"), "{error}");
        let error = decode(&code[..20]).unwrap_err();
        assert!(error.contains("56 letters and digits"), "{error}");
    }
}
