//! Signed visitor identities (`docs/protocol.md`, "Who the visitor is"). A page tells the
//! widget who its visitor is (`data-visitor-email="…"`), and agents then see that customer's
//! record — and, by the seed's policy, having served them lets an agent read that customer.
//! Anyone can type any email into a page, so with a secret configured
//! (`KEFU_IDENTITY_SECRET`) an identity counts only when the site's own server signed it:
//! `signature` = hex HMAC-SHA256(secret, the identity's other keys as `key=value` lines in key
//! order, each ending with `\n`). Keys are lowercase letters, digits and `_` (`gateway::frames`)
//! and a value with a line break is never verified, so no two identities sign the same text. An
//! identity without a valid signature is dropped (the conversation goes on as an anonymous
//! visitor's). Without a secret, identities are taken as they come.

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The key that carries the signature in a visitor identity.
pub const SIGNATURE: &str = "signature";

/// What is signed: `key=value\n` for every key but the signature, in key order.
fn canonical(visitor: &BTreeMap<String, String>) -> String {
    let mut text = String::new();
    for (key, value) in visitor.iter().filter(|(key, _)| key.as_str() != SIGNATURE) {
        text.push_str(key);
        text.push('=');
        text.push_str(value);
        text.push('\n');
    }
    text
}

fn mac(secret: &[u8], visitor: &BTreeMap<String, String>) -> Hmac<Sha256> {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(canonical(visitor).as_bytes());
    mac
}

/// The signature of `visitor` (its `signature` key, if any, left out), as hex.
pub fn sign(secret: &[u8], visitor: &BTreeMap<String, String>) -> String {
    let bytes = mac(secret, visitor).finalize().into_bytes();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The identity without its signature when the signature is valid (compared in constant
/// time), else `None`.
pub fn verified(
    secret: &[u8],
    visitor: &BTreeMap<String, String>,
) -> Option<BTreeMap<String, String>> {
    let signature = visitor.get(SIGNATURE)?;
    if visitor.values().any(|value| value.contains(['\n', '\r'])) {
        return None;
    }
    let bytes = decode_hex(signature)?;
    mac(secret, visitor).verify_slice(&bytes).ok()?;
    Some(
        visitor
            .iter()
            .filter(|(key, _)| key.as_str() != SIGNATURE)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visitor(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_signed_identity_is_verified_and_any_change_is_not() {
        let secret = b"shop-secret";
        let mut identity = visitor(&[("email", "li.na@example.com"), ("phone", "13987655678")]);
        let signature = sign(secret, &identity);
        assert_eq!(signature.len(), 64);
        identity.insert(SIGNATURE.to_owned(), signature.clone());
        let kept = verified(secret, &identity).expect("verified");
        assert_eq!(
            kept.get("email").map(String::as_str),
            Some("li.na@example.com")
        );
        assert!(!kept.contains_key(SIGNATURE));

        let mut other = identity.clone();
        other.insert("email".to_owned(), "wang.xiaoming@example.com".to_owned());
        assert_eq!(verified(secret, &other), None, "another email");
        assert_eq!(verified(b"other-secret", &identity), None, "another secret");
        let mut added = identity.clone();
        added.insert("id".to_owned(), "42".to_owned());
        assert_eq!(verified(secret, &added), None, "a key added");
        for bad in [
            "",
            "zz",
            &signature[..63],
            &signature.to_uppercase().replace('A', "G"),
        ] {
            let mut broken = identity.clone();
            broken.insert(SIGNATURE.to_owned(), bad.to_owned());
            assert_eq!(verified(secret, &broken), None, "{bad:?}");
        }
        assert_eq!(
            verified(secret, &visitor(&[("email", "x@y")])),
            None,
            "unsigned"
        );
    }

    #[test]
    fn the_signed_text_is_the_keys_in_order_and_line_breaks_are_never_verified() {
        let identity = visitor(&[("phone", "1"), ("email", "a=b")]);
        assert_eq!(canonical(&identity), "email=a=b\nphone=1\n");
        // `{email: "a\nphone=1"}` would sign the same text as `{email: "a", phone: "1"}`.
        let secret = b"s";
        let mut forged = visitor(&[("email", "a\nphone=1")]);
        let mut real = visitor(&[("email", "a"), ("phone", "1")]);
        let signature = sign(secret, &real);
        real.insert(SIGNATURE.to_owned(), signature.clone());
        forged.insert(SIGNATURE.to_owned(), signature);
        assert!(verified(secret, &real).is_some());
        assert_eq!(verified(secret, &forged), None);
    }
}
