//! The embedded store's local key-encryption key (KEK): 32 bytes that seal the keyring's
//! private material and webhook secrets with AES-256-GCM, where AWS uses KMS. It is kept
//! outside the database, so a copy of the database alone (a backup, a stray file) holds
//! no usable secret: `LOCAL_KEY_ENCRYPTION_KEY` (base64), or else a file beside the
//! database (`<database>.kek`), made with mode 0600 on the first start (docs/keys.md).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, NONCE_LEN};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::sealed::{aead_key, open_sealed, Sealed};
use crate::tokens::KeyError;

/// The environment variable that holds the key (base64 of 32 bytes); when unset, the key
/// file beside the database is used.
pub const ENV: &str = "LOCAL_KEY_ENCRYPTION_KEY";
const KEY_LEN: usize = 32;

/// The key file of the database at `database`: `<database>.kek`.
pub fn key_file(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".kek");
    PathBuf::from(name)
}

/// A loaded key: the AES-256-GCM key, its id (a digest, safe to store and log) and where
/// it came from (for error messages).
#[derive(Clone)]
pub struct LocalKek {
    key: Arc<LessSafeKey>,
    key_id: String,
    source: String,
}

impl LocalKek {
    /// The key of `bytes` (32), read from `source`.
    pub fn from_bytes(bytes: &[u8], source: impl Into<String>) -> Result<Self, KeyError> {
        let source = source.into();
        if bytes.len() != KEY_LEN {
            return Err(KeyError::LocalKey(format!(
                "{source} must hold {KEY_LEN} bytes (base64), not {}",
                bytes.len()
            )));
        }
        let mut id_input = b"session-service-local-kek/".to_vec();
        id_input.extend_from_slice(bytes);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &id_input);
        let key_id: String = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            key: Arc::new(aead_key(bytes)?),
            key_id: format!("kek_{key_id}"),
            source,
        })
    }

    /// The key's id, stored beside what it seals: names the key, reveals nothing of it.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub(super) fn check_key_id(&self, key_id: &str) -> Result<(), KeyError> {
        if key_id == self.key_id {
            return Ok(());
        }
        Err(KeyError::LocalKey(format!(
            "the stored keys are sealed with local key-encryption key {key_id}, but the key \
             this process has ({}) is {}: use the key the database was sealed with",
            self.source, self.key_id
        )))
    }

    pub(super) fn seal(&self, aad: &[u8], material: &[u8]) -> Result<Sealed, KeyError> {
        let nonce = crate::ids::random_bytes::<NONCE_LEN>();
        let mut in_out = material.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut in_out,
            )
            .map_err(|_| KeyError::LocalKey("sealing failed".into()))?;
        Ok(Sealed::Local {
            key_id: self.key_id.clone(),
            nonce: STANDARD.encode(nonce),
            ciphertext: STANDARD.encode(in_out),
        })
    }

    pub(super) fn open(
        &self,
        aad: &[u8],
        key_id: &str,
        nonce: &str,
        ciphertext: &str,
    ) -> Result<Vec<u8>, KeyError> {
        self.check_key_id(key_id)?;
        open_sealed(&self.key, aad, nonce, ciphertext)
    }
}

/// The key of the database at `database`: `from_env` (the value of [`ENV`]) when set;
/// else its key file, read, or made when it does not exist and `may_create` (the
/// database holds nothing sealed with a local key yet). A key file that group or others
/// may read is refused, as is a missing one the database needs.
pub fn resolve(
    database: &Path,
    from_env: Option<&str>,
    may_create: bool,
) -> Result<LocalKek, KeyError> {
    if let Some(value) = from_env {
        let bytes = STANDARD
            .decode(value.trim())
            .map_err(|_| KeyError::LocalKey(format!("{ENV} is not base64")))?;
        return LocalKek::from_bytes(&bytes, ENV);
    }
    let path = key_file(database);
    match read_key_file(&path) {
        Ok(kek) => return Ok(kek),
        Err(ReadError::Missing) if may_create => {}
        Err(ReadError::Missing) => {
            return Err(KeyError::LocalKey(format!(
                "the database's keys are sealed with a local key-encryption key, but {} is \
                 missing and {ENV} is not set: restore the key file that was kept with the \
                 database (a database without its key cannot be read)",
                path.display()
            )))
        }
        Err(ReadError::Refused(why)) => return Err(KeyError::LocalKey(why)),
    }
    create_key_file(&path)?;
    match read_key_file(&path) {
        Ok(kek) => Ok(kek),
        Err(ReadError::Missing) => Err(KeyError::LocalKey(format!(
            "{} vanished after it was made",
            path.display()
        ))),
        Err(ReadError::Refused(why)) => Err(KeyError::LocalKey(why)),
    }
}

enum ReadError {
    Missing,
    Refused(String),
}

fn read_key_file(path: &Path) -> Result<LocalKek, ReadError> {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) => return Err(ReadError::Refused(format!("{shown}: {e}"))),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(ReadError::Refused(format!(
                "{shown} may be read by others (mode {mode:04o}): `chmod 600` it, and \
                 consider the key exposed"
            )));
        }
    }
    let _ = meta;
    let text =
        std::fs::read_to_string(path).map_err(|e| ReadError::Refused(format!("{shown}: {e}")))?;
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| ReadError::Refused(format!("{shown} is not base64")))?;
    LocalKek::from_bytes(&bytes, shown.to_string()).map_err(|e| ReadError::Refused(e.to_string()))
}

/// Makes the key file: written whole to a private temporary file, then linked into place,
/// which fails if another process made it first (its key is then used). No process ever
/// reads a half-written key, and the file is never readable by others.
fn create_key_file(path: &Path) -> Result<(), KeyError> {
    let fail = |e: std::io::Error| KeyError::LocalKey(format!("{}: {e}", path.display()));
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}.tmp", crate::ids::new_secret()));
    let tmp = PathBuf::from(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut file| {
        let key = crate::ids::random_bytes::<KEY_LEN>();
        writeln!(file, "{}", STANDARD.encode(key))?;
        file.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                // The new name on disk too, before anything is sealed with the key.
                let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
            }
            tracing::info!(path = %path.display(), "local key-encryption key created");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(fail(e)),
    }
}
