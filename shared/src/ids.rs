//! Identifiers and random secrets.

use base64::Engine;

/// Fills a buffer from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS random source failing is not recoverable; aws-lc-rs aborts in the same case.
    if aws_lc_rs::rand::fill(&mut buf).is_err() {
        std::process::abort();
    }
    buf
}

/// A new id such as `sess_2b4f…`: a Clerk-style prefix and 128 random bits.
pub fn new_id(prefix: &str) -> String {
    prefixed(prefix, &random_bytes::<16>())
}

/// `prefix_` and `bytes` in the ids' alphabet.
pub fn prefixed(prefix: &str, bytes: &[u8]) -> String {
    let mut id = String::with_capacity(prefix.len() + 1 + 26);
    id.push_str(prefix);
    id.push('_');
    id.push_str(&base32(bytes));
    id
}

/// A URL-safe random secret with 256 bits of entropy.
pub fn new_secret() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// Lower-case Crockford-style base32: ids stay alphanumeric, like Clerk's.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Whether `id` looks like one of ours with this prefix; anything else cannot exist in the store.
pub fn is_well_formed(id: &str, prefix: &str) -> bool {
    id.len() <= 64
        && id
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('_'))
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_unique_and_well_formed() {
        let a = new_id("sess");
        let b = new_id("sess");
        assert_ne!(a, b);
        assert!(is_well_formed(&a, "sess"));
        assert_eq!(a.len(), "sess_".len() + 26);
        assert!(!is_well_formed(&a, "client"));
        assert!(!is_well_formed("sess_../x", "sess"));
        assert!(!is_well_formed("sess_", "sess"));
    }
}
