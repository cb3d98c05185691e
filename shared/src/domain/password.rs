//! Passwords: the rules a new one must meet, and the digest a user's is kept as.
//!
//! Every password set through this service is kept as an argon2id digest with
//! [`ARGON2ID_PARAMS`]. Digests imported from another system (`password_digest` +
//! `password_hasher` on the Backend API, as in Clerk's user export) are kept as they came
//! and verified with their own algorithm; a match reports that the digest should be
//! replaced by an argon2id one of the same password. Nothing here logs, formats or returns
//! a password: [`PasswordDigest`]'s `Debug` shows only its algorithm.

use std::fmt;

use std::sync::{Mutex, MutexGuard};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::ids::random_bytes;

/// argon2id with 19 MiB of memory, 2 passes, 1 lane: OWASP's Password Storage Cheat Sheet
/// (its first recommended configuration). What one verification costs, here and on
/// Lambda's memory sizes: docs/sign-in.md.
pub const ARGON2ID_PARAMS: Argon2idParams = Argon2idParams {
    memory_kib: 19 * 1024,
    passes: 2,
    lanes: 1,
};

/// The argon2id cost of a digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2idParams {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

/// The most an imported digest may cost to verify: a sign-in must not become a way to
/// burn seconds of CPU (or, for argon2, gigabytes) with a digest someone imported.
const MAX_BCRYPT_COST: u32 = 14;
const MAX_PBKDF2_ITERATIONS: u32 = 2_000_000;
const MAX_ARGON2_MEMORY_KIB: u32 = 64 * 1024;
const MAX_ARGON2_PASSES: u32 = 10;
const MAX_ARGON2_LANES: u32 = 4;
/// An imported digest longer than this is no digest of a supported kind.
const MAX_DIGEST_BYTES: usize = 512;

/// What an instance asks of a new password (Clerk's `password_settings`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasswordRules {
    /// In characters. Clerk's default is 8.
    pub min_length: usize,
    /// In characters: bounds the work of the strength check and of hashing.
    pub max_length: usize,
    /// zxcvbn's score (0 to 4) a password must reach; 0 checks nothing.
    pub min_strength: u8,
    /// Refuses passwords that are on zxcvbn's bundled list of common passwords, whole (the
    /// offline stand-in for Clerk's check against breached passwords).
    pub reject_common: bool,
}

impl Default for PasswordRules {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 72,
            min_strength: 0,
            reject_common: true,
        }
    }
}

/// Why a new password was refused; each is one of Clerk's error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejected {
    /// `form_password_length_too_short`
    #[error("the password has fewer than {0} characters")]
    TooShort(usize),
    /// `form_password_length_too_long`
    #[error("the password has more than {0} characters")]
    TooLong(usize),
    /// `form_password_pwned`
    #[error("the password is one of the most common passwords")]
    Common,
    /// `form_password_not_strong_enough`
    #[error("the password is too easy to guess")]
    NotStrongEnough,
}

impl PasswordRules {
    /// Checks a new password. `user_inputs` are the user's other attributes (email
    /// address, names), which make a password built from them weaker.
    pub fn check(&self, password: &str, user_inputs: &[&str]) -> Result<(), PasswordRejected> {
        // Length first: the strength estimate's cost grows with the input.
        let chars = password.chars().take(self.max_length + 1).count();
        if chars < self.min_length {
            return Err(PasswordRejected::TooShort(self.min_length));
        }
        if chars > self.max_length {
            return Err(PasswordRejected::TooLong(self.max_length));
        }
        if !self.reject_common && self.min_strength == 0 {
            return Ok(());
        }
        let estimate = zxcvbn::zxcvbn(password, user_inputs);
        if self.reject_common && is_common(&estimate, password) {
            return Err(PasswordRejected::Common);
        }
        if u8::from(estimate.score()) < self.min_strength {
            return Err(PasswordRejected::NotStrongEnough);
        }
        Ok(())
    }
}

/// The whole password, as typed (any case), is one entry of the common passwords list.
fn is_common(estimate: &zxcvbn::Entropy, password: &str) -> bool {
    let last = password.chars().count().saturating_sub(1);
    estimate.sequence().iter().any(|m| {
        m.i == 0
            && m.j == last
            && matches!(
                &m.pattern,
                zxcvbn::matching::patterns::MatchPattern::Dictionary(d)
                    // zxcvbn does not export its dictionaries' type; the common
                    // passwords list is its default one.
                    if d.dictionary_name == Default::default()
                        && !d.reversed
                        && !d.l33t
            )
    })
}

/// The algorithms a digest may come in (Clerk's `password_hasher` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hasher {
    /// A PHC string, `$argon2id$v=19$m=…,t=…,p=…$salt$hash`: this service's own.
    Argon2id,
    /// A PHC string, `$argon2i$…` (imported only).
    Argon2i,
    /// `$2a$`, `$2b$` or `$2y$` + cost + salt and hash (imported only).
    Bcrypt,
    /// `pbkdf2_sha256$<iterations>$<base64 salt>$<base64 hash>` (imported only).
    Pbkdf2Sha256,
    /// Django's: `pbkdf2_sha256$<iterations>$<salt as is>$<base64 hash>` (imported only).
    Pbkdf2Sha256Django,
}

impl Hasher {
    /// The `password_hasher` value of the Backend API.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "argon2id" => Self::Argon2id,
            "argon2i" => Self::Argon2i,
            "bcrypt" => Self::Bcrypt,
            "pbkdf2_sha256" => Self::Pbkdf2Sha256,
            "pbkdf2_sha256_django" => Self::Pbkdf2Sha256Django,
            _ => return None,
        })
    }
}

/// A user's password as kept: never the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordDigest {
    pub hasher: Hasher,
    digest: String,
}

impl fmt::Debug for PasswordDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PasswordDigest({:?})", self.hasher)
    }
}

/// Why an imported digest was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestRejected {
    #[error("the digest is not in the format of its password_hasher")]
    Malformed,
    #[error("the digest costs more to verify than this service allows")]
    TooCostly,
}

/// What comparing a password with a digest found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verified {
    Mismatch,
    /// The password matches; `rehash`: the digest is not argon2id at [`ARGON2ID_PARAMS`],
    /// so it should be replaced by [`PasswordDigest::new`] of the same password.
    Match {
        rehash: bool,
    },
}

/// Hashing failed: only with parameters argon2 refuses, which [`ARGON2ID_PARAMS`] are not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the password could not be hashed")]
pub struct HashingFailed;

impl PasswordDigest {
    /// An argon2id digest of `password` at [`ARGON2ID_PARAMS`], with a random 16-byte salt.
    pub fn new(password: &str) -> Result<Self, HashingFailed> {
        let p = ARGON2ID_PARAMS;
        let params =
            Params::new(p.memory_kib, p.passes, p.lanes, None).map_err(|_| HashingFailed)?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let salt = random_bytes::<16>();
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        with_memory(params.block_count(), |blocks| {
            argon2.hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks)
        })
        .map_err(|_| HashingFailed)?;
        let hash = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|_| HashingFailed)?,
            salt: Some(Salt::new(&salt).map_err(|_| HashingFailed)?),
            hash: Some(Output::new(&out).map_err(|_| HashingFailed)?),
        };
        Ok(Self {
            hasher: Hasher::Argon2id,
            digest: hash.to_string(),
        })
    }

    /// A digest made elsewhere, checked for its format and bounded in cost.
    pub fn import(hasher: Hasher, digest: &str) -> Result<Self, DigestRejected> {
        if digest.len() > MAX_DIGEST_BYTES {
            return Err(DigestRejected::Malformed);
        }
        match hasher {
            Hasher::Argon2id | Hasher::Argon2i => {
                let hash = PasswordHash::new(digest).map_err(|_| DigestRejected::Malformed)?;
                let want = if hasher == Hasher::Argon2id {
                    "argon2id"
                } else {
                    "argon2i"
                };
                if hash.algorithm.as_str() != want || hash.hash.is_none() {
                    return Err(DigestRejected::Malformed);
                }
                let params = Params::try_from(&hash).map_err(|_| DigestRejected::Malformed)?;
                if params.m_cost() > MAX_ARGON2_MEMORY_KIB
                    || params.t_cost() > MAX_ARGON2_PASSES
                    || params.p_cost() > MAX_ARGON2_LANES
                {
                    return Err(DigestRejected::TooCostly);
                }
            }
            Hasher::Bcrypt => {
                let parts: bcrypt::HashParts =
                    digest.parse().map_err(|_| DigestRejected::Malformed)?;
                if parts.get_cost() > MAX_BCRYPT_COST {
                    return Err(DigestRejected::TooCostly);
                }
            }
            Hasher::Pbkdf2Sha256 | Hasher::Pbkdf2Sha256Django => {
                let parsed = Pbkdf2::parse(hasher, digest).ok_or(DigestRejected::Malformed)?;
                if parsed.iterations > MAX_PBKDF2_ITERATIONS {
                    return Err(DigestRejected::TooCostly);
                }
            }
        }
        Ok(Self {
            hasher,
            digest: digest.to_string(),
        })
    }

    /// Compares `password` with the digest, in constant time in what it compares.
    pub fn verify(&self, password: &str) -> Verified {
        let matched = match self.hasher {
            Hasher::Argon2id | Hasher::Argon2i => argon2_matches(&self.digest, password),
            Hasher::Bcrypt => bcrypt::verify(password, &self.digest).unwrap_or(false),
            Hasher::Pbkdf2Sha256 | Hasher::Pbkdf2Sha256Django => {
                Pbkdf2::parse(self.hasher, &self.digest).is_some_and(|p| p.matches(password))
            }
        };
        if !matched {
            return Verified::Mismatch;
        }
        Verified::Match {
            rehash: !self.is_current(),
        }
    }

    /// An argon2id digest at this service's parameters.
    fn is_current(&self) -> bool {
        self.hasher == Hasher::Argon2id
            && PasswordHash::new(&self.digest)
                .ok()
                .and_then(|hash| Params::try_from(&hash).ok())
                .is_some_and(|p| {
                    p.m_cost() == ARGON2ID_PARAMS.memory_kib
                        && p.t_cost() == ARGON2ID_PARAMS.passes
                        && p.p_cost() == ARGON2ID_PARAMS.lanes
                })
    }
}

/// Whether `password` is the one of the argon2 PHC string `digest` (its own algorithm,
/// version and parameters), compared in constant time.
fn argon2_matches(digest: &str, password: &str) -> bool {
    let Ok(hash) = PasswordHash::new(digest) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let (Ok(params), Ok(algorithm)) = (
        Params::try_from(&hash),
        Algorithm::try_from(hash.algorithm.as_str()),
    ) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.as_bytes().len()];
    let hashed = with_memory(params.block_count(), |blocks| {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks)
    });
    hashed.is_ok()
        && aws_lc_rs::constant_time::verify_slices_are_equal(&out, expected.as_bytes()).is_ok()
}

/// argon2's working memory (19 MiB at this service's parameters), kept between hashes
/// rather than allocated for each: on glibc's allocator (the Lambda functions') a freed
/// block of that size raises its mmap threshold, and the next ones stay in the heap,
/// which grew a process by gigabytes over thousands of sign-ins (docs/sign-in.md). At
/// most one buffer per core is kept, and none larger than this service's own parameters
/// need (an imported digest may ask for more, once: the sign-in replaces it).
static MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

fn kept_memory() -> MutexGuard<'static, Vec<Vec<Block>>> {
    MEMORY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `work` on `blocks` blocks of argon2 memory, from the kept buffers when one is free.
fn with_memory<T>(blocks: usize, work: impl FnOnce(&mut [Block]) -> T) -> T {
    let mut memory = kept_memory().pop().unwrap_or_default();
    if memory.len() < blocks {
        memory.resize(blocks, Block::new());
    }
    let result = work(&mut memory[..blocks]);
    let keep = std::thread::available_parallelism().map_or(1, |n| n.get());
    let standard = ARGON2ID_PARAMS.memory_kib as usize;
    let mut kept = kept_memory();
    if kept.len() < keep && memory.len() <= standard {
        kept.push(memory);
    }
    result
}

/// A PBKDF2-HMAC-SHA256 digest, taken apart.
struct Pbkdf2 {
    iterations: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl Pbkdf2 {
    fn parse(hasher: Hasher, digest: &str) -> Option<Self> {
        let mut parts = digest.split('$');
        let (algorithm, iterations, salt, hash) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if algorithm != "pbkdf2_sha256" || parts.next().is_some() {
            return None;
        }
        let b64 = &base64::engine::general_purpose::STANDARD;
        let salt = match hasher {
            Hasher::Pbkdf2Sha256Django => salt.as_bytes().to_vec(),
            _ => b64.decode(salt).ok()?,
        };
        let hash = b64.decode(hash).ok()?;
        let iterations: u32 = iterations.parse().ok()?;
        (iterations > 0 && !salt.is_empty() && (16..=64).contains(&hash.len())).then_some(Self {
            iterations,
            salt,
            hash,
        })
    }

    fn matches(&self, password: &str) -> bool {
        let mut derived = vec![0u8; self.hash.len()];
        pbkdf2::pbkdf2_hmac::<pbkdf2::sha2::Sha256>(
            password.as_bytes(),
            &self.salt,
            self.iterations,
            &mut derived,
        );
        aws_lc_rs::constant_time::verify_slices_are_equal(&derived, &self.hash).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[test]
    fn digests_are_standard_phc_strings_either_way() {
        let ours = PasswordDigest::new("plum-tractor-vinegar-42").unwrap();
        let parsed = PasswordHash::new(&ours.digest).unwrap();
        assert!(Argon2::default()
            .verify_password(b"plum-tractor-vinegar-42", &parsed)
            .is_ok());
        assert!(ours.digest.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let theirs = Argon2::default()
            .hash_password_with_salt(b"made-elsewhere-7", b"0123456789abcdef")
            .unwrap()
            .to_string();
        assert!(argon2_matches(&theirs, "made-elsewhere-7"));
        assert!(!argon2_matches(&theirs, "made-elsewhere-8"));
    }

    #[test]
    fn argon2_memory_is_kept_and_bounded() {
        for _ in 0..4 {
            PasswordDigest::new("plum-tractor-vinegar-42").unwrap();
        }
        let keep = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert!(kept_memory().len() <= keep);
    }

    #[test]
    fn a_new_password_is_kept_as_argon2id_at_the_chosen_parameters() {
        let digest = PasswordDigest::new("correct horse battery staple").unwrap();
        assert_eq!(digest.hasher, Hasher::Argon2id);
        assert!(digest.digest.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(
            digest.verify("correct horse battery staple"),
            Verified::Match { rehash: false }
        );
        assert_eq!(
            digest.verify("correct horse battery stapler"),
            Verified::Mismatch
        );
        // Its Debug form names the algorithm only.
        assert_eq!(format!("{digest:?}"), "PasswordDigest(Argon2id)");
        // Two digests of one password differ (the salt).
        assert_ne!(
            PasswordDigest::new("correct horse battery staple")
                .unwrap()
                .digest,
            digest.digest
        );
    }

    #[test]
    fn imported_digests_verify_and_ask_to_be_rehashed() {
        let bcrypt = bcrypt::hash("hunter2hunter2", 4).unwrap();
        let imported = PasswordDigest::import(Hasher::Bcrypt, &bcrypt).unwrap();
        assert_eq!(
            imported.verify("hunter2hunter2"),
            Verified::Match { rehash: true }
        );
        assert_eq!(imported.verify("hunter2hunter3"), Verified::Mismatch);

        // PBKDF2-SHA256, both encodings of the salt.
        let salt = b"saltsaltsalt";
        let mut hash = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<pbkdf2::sha2::Sha256>(b"hunter2hunter2", salt, 1000, &mut hash);
        let b64 = &base64::engine::general_purpose::STANDARD;
        let clerk = format!(
            "pbkdf2_sha256$1000${}${}",
            b64.encode(salt),
            b64.encode(hash)
        );
        let django = format!("pbkdf2_sha256$1000$saltsaltsalt${}", b64.encode(hash));
        for (hasher, digest) in [
            (Hasher::Pbkdf2Sha256, clerk),
            (Hasher::Pbkdf2Sha256Django, django),
        ] {
            let imported = PasswordDigest::import(hasher, &digest).unwrap();
            assert_eq!(
                imported.verify("hunter2hunter2"),
                Verified::Match { rehash: true }
            );
            assert_eq!(imported.verify("hunter2hunter"), Verified::Mismatch);
        }

        // argon2id at other parameters, and argon2i.
        for algorithm in [Algorithm::Argon2id, Algorithm::Argon2i] {
            let params = Params::new(8 * 1024, 1, 1, None).unwrap();
            let other = Argon2::new(algorithm, Version::V0x13, params)
                .hash_password_with_salt(b"hunter2hunter2", b"0123456789abcdef")
                .unwrap()
                .to_string();
            let hasher = if algorithm == Algorithm::Argon2id {
                Hasher::Argon2id
            } else {
                Hasher::Argon2i
            };
            let imported = PasswordDigest::import(hasher, &other).unwrap();
            assert_eq!(
                imported.verify("hunter2hunter2"),
                Verified::Match { rehash: true }
            );
            assert_eq!(imported.verify("hunter2"), Verified::Mismatch);
        }
    }

    #[test]
    fn a_digest_in_the_wrong_format_or_too_costly_is_refused() {
        assert_eq!(
            PasswordDigest::import(Hasher::Bcrypt, "not-a-digest"),
            Err(DigestRejected::Malformed)
        );
        let costly = bcrypt::hash_with_salt("x", 15, [0u8; 16])
            .unwrap()
            .to_string();
        assert_eq!(
            PasswordDigest::import(Hasher::Bcrypt, &costly),
            Err(DigestRejected::TooCostly)
        );
        assert_eq!(
            PasswordDigest::import(
                Hasher::Pbkdf2Sha256,
                "pbkdf2_sha256$99999999$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA=="
            ),
            Err(DigestRejected::TooCostly)
        );
        assert_eq!(
            PasswordDigest::import(
                Hasher::Argon2id,
                "$argon2id$v=19$m=4194304,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
            ),
            Err(DigestRejected::TooCostly)
        );
        // The wrong argon2 variant for its hasher.
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        )
        .hash_password_with_salt(b"pw", b"0123456789abcdef")
        .unwrap()
        .to_string();
        assert_eq!(
            PasswordDigest::import(Hasher::Argon2id, &argon2i),
            Err(DigestRejected::Malformed)
        );
        assert_eq!(
            PasswordDigest::import(Hasher::Bcrypt, &"$2b$".repeat(200)),
            Err(DigestRejected::Malformed)
        );
    }

    #[test]
    fn new_passwords_meet_the_rules() {
        let rules = PasswordRules::default();
        assert_eq!(
            rules.check("short", &[]),
            Err(PasswordRejected::TooShort(8))
        );
        assert_eq!(
            rules.check(&"x".repeat(64 * 1024), &[]),
            Err(PasswordRejected::TooLong(72))
        );
        assert_eq!(rules.check("password", &[]), Err(PasswordRejected::Common));
        assert_eq!(rules.check("PassWord", &[]), Err(PasswordRejected::Common));
        assert_eq!(rules.check("12345678", &[]), Err(PasswordRejected::Common));
        assert_eq!(rules.check("plum-tractor-vinegar-42", &[]), Ok(()));
        // Length counts characters, not bytes.
        assert_eq!(
            rules.check("ééééééé", &[]),
            Err(PasswordRejected::TooShort(8))
        );
        let strict = PasswordRules {
            min_strength: 3,
            ..rules
        };
        assert_eq!(
            strict.check("lovelace1815", &["ada", "lovelace"]),
            Err(PasswordRejected::NotStrongEnough)
        );
        assert_eq!(strict.check("plum-tractor-vinegar-42", &[]), Ok(()));
    }
}
