//! Password hashing, verification and policy.
//!
//! New hashes are argon2id in PHC string format with a random salt. Verification also accepts
//! the original backend's Django hashes (`pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`) so
//! existing passwords keep working; a valid Django hash (or an argon2 hash made with other
//! parameters than today's) reports `needs_rehash: true` so the caller can upgrade it on login.
//! A malformed stored hash never panics: it simply does not verify.
//!
//! New hashes use [`PARAMS`]: argon2id with 7 MiB of memory and 5 passes, the lowest-memory
//! of the configurations the OWASP Password Storage Cheat Sheet lists as equally strong
//! (19 MiB × 2 passes, 12 × 3, 9 × 4, 7 × 5). The CPU cost is about the same as 19 MiB × 2;
//! the working memory is what a server holding all of its state in 32 MB can afford per
//! concurrent hash. Hashes made with other parameters (the earlier 19 MiB × 2 among them)
//! still verify with their own and report `needs_rehash`, so they move to [`PARAMS`] on the
//! next login.
//!
//! The async entry points [`hash_async`] / [`verify_async`] run on a fixed pool of one thread
//! per CPU, so at most that many hashes hold working memory at once (a login flood once held
//! 2.6 GB when hashes ran on the blocking pool), and the runtime's threads never block. Each
//! hash allocates its working memory and frees it when done: nothing of it stays resident
//! between logins (the server's allocator returns large blocks to the system).

use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use password_hash::rand_core::OsRng;
use password_hash::SaltString;
use password_hash::{Output, ParamsString};
use subtle::ConstantTimeEq;

/// Minimum password length, in characters.
pub const MIN_LENGTH: usize = 8;

/// The Django algorithm prefix accepted by [`verify`].
const DJANGO_PBKDF2_PREFIX: &str = "pbkdf2_sha256";

/// Upper bound on the iteration count accepted from a stored Django hash, so a corrupted row
/// cannot make one login burn minutes of CPU. Django's own default is below 1,000,000.
const MAX_DJANGO_ITERATIONS: u32 = 10_000_000;

/// Length of a Django PBKDF2-SHA256 derived key (the SHA-256 output size).
const DJANGO_KEY_LEN: usize = 32;

/// A failure while hashing a password.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The argon2 hasher refused the input (for example a password beyond its size limit).
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The password matches the stored hash.
    Valid {
        /// The stored hash uses a legacy format or parameters other than [`PARAMS`]; store [`hash`]'s output
        /// instead.
        needs_rehash: bool,
    },
    /// The password does not match, or the stored hash is malformed or of an unknown kind.
    Invalid,
}

impl Verification {
    /// Whether the password matched.
    pub fn is_valid(self) -> bool {
        matches!(self, Self::Valid { .. })
    }
}

/// The largest argon2 memory cost accepted from a stored hash (KiB): a corrupted or hostile row
/// must not make one login allocate gigabytes.
const MAX_MEMORY_KIB: u32 = 256 * 1024;

/// Memory cost of new hashes (KiB).
pub const MEMORY_KIB: u32 = 7 * 1024;

/// Passes of new hashes.
pub const PASSES: u32 = 5;

/// The argon2id parameters of new hashes: [`MEMORY_KIB`], [`PASSES`], one lane.
pub static PARAMS: LazyLock<Params> = LazyLock::new(|| {
    Params::new(MEMORY_KIB, PASSES, 1, None).unwrap_or_else(|_| Params::default())
});

/// Runs argon2 into `out` with working memory allocated for this hash and freed after it.
fn argon2_into(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let mut blocks = vec![Block::default(); params.block_count()];
    let argon = Argon2::new(algorithm, version, params);
    argon.hash_password_into_with_memory(password, salt, out, &mut blocks)
}

/// Hashes `password` with argon2id ([`PARAMS`]) and a fresh random salt, returning a PHC
/// string such as `$argon2id$v=19$m=7168,t=5,p=1$…`.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let failed = |e: &dyn std::fmt::Display| PasswordError::Hashing(e.to_string());
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| failed(&e))?;
    let params = PARAMS.clone();
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    argon2_into(
        Algorithm::Argon2id,
        Version::V0x13,
        params.clone(),
        password.as_bytes(),
        salt_bytes,
        &mut out,
    )
    .map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

/// Checks `password` against a stored argon2 PHC hash or Django `pbkdf2_sha256` hash.
pub fn verify(password: &str, stored: &str) -> Verification {
    if stored.starts_with('$') {
        verify_phc(password, stored)
    } else if stored.starts_with(DJANGO_PBKDF2_PREFIX) {
        verify_django(password, stored)
    } else {
        Verification::Invalid
    }
}

fn verify_phc(password: &str, stored: &str) -> Verification {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verification::Invalid;
    };
    let Ok(algorithm) = Algorithm::new(parsed.algorithm.as_str()) else {
        return Verification::Invalid;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(v)) => v,
        Some(Err(_)) => return Verification::Invalid,
    };
    let (Ok(params), Some(salt), Some(expected)) =
        (Params::try_from(&parsed), parsed.salt, parsed.hash)
    else {
        return Verification::Invalid;
    };
    if params.m_cost() > MAX_MEMORY_KIB {
        return Verification::Invalid;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
        return Verification::Invalid;
    };
    let mut out = vec![0u8; expected.len()];
    let current = &*PARAMS;
    let needs_rehash = algorithm != Algorithm::Argon2id
        || version != Version::V0x13
        || params.m_cost() != current.m_cost()
        || params.t_cost() != current.t_cost()
        || params.p_cost() != current.p_cost();
    let Ok(params) = Params::new(
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        Some(expected.len()),
    ) else {
        return Verification::Invalid;
    };
    if argon2_into(
        algorithm,
        version,
        params,
        password.as_bytes(),
        salt_bytes,
        &mut out,
    )
    .is_err()
    {
        return Verification::Invalid;
    }
    // `Output` compares in constant time.
    match Output::new(&out) {
        Ok(computed) if computed == expected => Verification::Valid { needs_rehash },
        _ => Verification::Invalid,
    }
}

/// A job for the password threads.
type Job = Box<dyn FnOnce() + Send>;

/// The fixed pool of password threads (one per CPU), started on first use.
fn workers() -> &'static mpsc::Sender<Job> {
    static WORKERS: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    WORKERS.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("leopard-password-{i}"))
                .spawn(move || loop {
                    // A poisoned lock only means another worker panicked while waiting.
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => break,
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password thread");
            }
        }
        tx
    })
}

/// Runs `f` on the password threads and awaits its result.
async fn on_workers<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PasswordError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    workers()
        .send(Box::new(move || {
            let _ = tx.send(f());
        }))
        .map_err(|_| PasswordError::Hashing("the password threads are gone".into()))?;
    rx.await
        .map_err(|_| PasswordError::Hashing("a password thread failed".into()))
}

/// [`hash`] on the password threads (never blocks the async runtime).
pub async fn hash_async(password: String) -> Result<String, PasswordError> {
    on_workers(move || hash(&password)).await?
}

/// [`verify`] on the password threads (never blocks the async runtime).
pub async fn verify_async(password: String, stored: String) -> Result<Verification, PasswordError> {
    on_workers(move || verify(&password, &stored)).await
}

fn verify_django(password: &str, stored: &str) -> Verification {
    let mut parts = stored.split('$');
    let (Some(DJANGO_PBKDF2_PREFIX), Some(iterations), Some(salt), Some(expected), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Verification::Invalid;
    };
    let Ok(iterations) = iterations.parse::<u32>() else {
        return Verification::Invalid;
    };
    if iterations == 0 || iterations > MAX_DJANGO_ITERATIONS || salt.is_empty() {
        return Verification::Invalid;
    }
    let Ok(expected) = STANDARD.decode(expected) else {
        return Verification::Invalid;
    };
    if expected.len() != DJANGO_KEY_LEN {
        return Verification::Invalid;
    }
    let mut derived = [0u8; DJANGO_KEY_LEN];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
        password.as_bytes(),
        salt.as_bytes(),
        iterations,
        &mut derived,
    );
    if bool::from(derived.ct_eq(expected.as_slice())) {
        Verification::Valid { needs_rehash: true }
    } else {
        Verification::Invalid
    }
}

/// Checks `password` against the policy: at least [`MIN_LENGTH`] characters, not entirely
/// numeric, not equal (ignoring case) to the username, the email or the email's local part, and
/// not a common password. Returns every message that applies.
pub fn validate_policy(password: &str, username: &str, email: &str) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    if password.chars().count() < MIN_LENGTH {
        errors.push(format!(
            "This password is too short. It must contain at least {MIN_LENGTH} characters."
        ));
    }
    if !password.is_empty() && password.chars().all(|c| c.is_numeric()) {
        errors.push("This password is entirely numeric.".to_owned());
    }
    let lowered = password.to_lowercase();
    let local_part = email.split_once('@').map_or(email, |(local, _)| local);
    let same_as = |attribute: &str| !attribute.is_empty() && attribute.to_lowercase() == lowered;
    if same_as(username) {
        errors.push("The password is too similar to the username.".to_owned());
    }
    if same_as(email) || same_as(local_part) {
        errors.push("The password is too similar to the email address.".to_owned());
    }
    if COMMON_PASSWORDS.contains(&lowered.as_str()) {
        errors.push("This password is too common.".to_owned());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Frequently used passwords (lower case), refused by [`validate_policy`].
const COMMON_PASSWORDS: &[&str] = &[
    "123456",
    "password",
    "12345678",
    "qwerty",
    "123456789",
    "12345",
    "1234",
    "111111",
    "1234567",
    "dragon",
    "123123",
    "baseball",
    "abc123",
    "football",
    "monkey",
    "letmein",
    "696969",
    "shadow",
    "master",
    "666666",
    "qwertyuiop",
    "123321",
    "mustang",
    "1234567890",
    "michael",
    "654321",
    "superman",
    "1qaz2wsx",
    "7777777",
    "121212",
    "000000",
    "qazwsx",
    "123qwe",
    "killer",
    "trustno1",
    "jordan",
    "jennifer",
    "zxcvbnm",
    "asdfgh",
    "hunter",
    "buster",
    "soccer",
    "harley",
    "batman",
    "andrew",
    "tigger",
    "sunshine",
    "iloveyou",
    "2000",
    "charlie",
    "robert",
    "thomas",
    "hockey",
    "ranger",
    "daniel",
    "starwars",
    "klaster",
    "112233",
    "george",
    "computer",
    "michelle",
    "jessica",
    "pepper",
    "1111",
    "zxcvbn",
    "555555",
    "11111111",
    "131313",
    "freedom",
    "777777",
    "pass",
    "maggie",
    "159753",
    "aaaaaa",
    "ginger",
    "princess",
    "joshua",
    "cheese",
    "amanda",
    "summer",
    "love",
    "ashley",
    "nicole",
    "chelsea",
    "biteme",
    "matthew",
    "access",
    "yankees",
    "987654321",
    "dallas",
    "austin",
    "thunder",
    "taylor",
    "matrix",
    "password1",
    "password123",
    "welcome",
    "welcome1",
    "admin123",
    "qwerty123",
    "iloveyou1",
    "passw0rd",
    "changeme",
];

#[cfg(test)]
mod tests {
    use super::*;
    use password_hash::{PasswordHasher as _, PasswordVerifier as _};

    #[test]
    fn hashes_interoperate_with_the_reference_argon2_implementation() -> Result<(), PasswordError> {
        // Ours verifies with the argon2 crate's own PHC verifier…
        let ours = hash("interop pw")?;
        let parsed = PasswordHash::new(&ours).map_err(|e| PasswordError::Hashing(e.to_string()))?;
        assert!(Argon2::default()
            .verify_password(b"interop pw", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"other pw", &parsed)
            .is_err());
        // …and the reference hash with our parameters verifies with ours, without a rehash.
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, PARAMS.clone())
            .hash_password(b"interop pw", &SaltString::generate(&mut OsRng))
            .map_err(|e| PasswordError::Hashing(e.to_string()))?
            .to_string();
        assert_eq!(
            verify("interop pw", &reference),
            Verification::Valid {
                needs_rehash: false
            }
        );
        assert_eq!(verify("other pw", &reference), Verification::Invalid);
        Ok(())
    }

    #[test]
    fn a_stored_hash_demanding_huge_memory_does_not_verify() {
        let hostile = "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$\
                       YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE";
        assert_eq!(verify("pw", hostile), Verification::Invalid);
    }

    #[tokio::test]
    async fn the_async_entry_points_hash_and_verify_on_the_password_threads(
    ) -> Result<(), PasswordError> {
        let stored = hash_async("async pw".into()).await?;
        let checks = (0..8).map(|i| {
            let stored = stored.clone();
            let pw = if i % 2 == 0 { "async pw" } else { "wrong pw" };
            verify_async(pw.into(), stored)
        });
        let results = futures::future::join_all(checks).await;
        for (i, result) in results.into_iter().enumerate() {
            assert_eq!(result?.is_valid(), i % 2 == 0, "check {i}");
        }
        Ok(())
    }

    /// Computed independently with Python's
    /// `hashlib.pbkdf2_hmac('sha256', b'correct horse', b'salt1234', 260000)`.
    const DJANGO_VECTOR: &str =
        "pbkdf2_sha256$260000$salt1234$qjh4xre6GKpwecyN6xWgddRVZv0rQnXP18CEh++p/aw=";

    #[test]
    fn a_fresh_hash_is_argon2id_and_verifies_without_rehash() -> Result<(), PasswordError> {
        let stored = hash("correct horse")?;
        assert!(
            stored.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"),
            "{stored}"
        );
        assert_eq!(
            verify("correct horse", &stored),
            Verification::Valid {
                needs_rehash: false
            }
        );
        assert_eq!(verify("wrong horse", &stored), Verification::Invalid);
        Ok(())
    }

    #[test]
    fn two_hashes_of_the_same_password_use_different_salts() -> Result<(), PasswordError> {
        assert_ne!(hash("correct horse")?, hash("correct horse")?);
        Ok(())
    }

    #[test]
    fn a_django_hash_verifies_and_asks_for_a_rehash() {
        assert_eq!(
            verify("correct horse", DJANGO_VECTOR),
            Verification::Valid { needs_rehash: true }
        );
    }

    #[test]
    fn a_wrong_password_does_not_verify_against_a_django_hash() {
        assert_eq!(
            verify("correct horsf", DJANGO_VECTOR),
            Verification::Invalid
        );
        assert_eq!(verify("", DJANGO_VECTOR), Verification::Invalid);
    }

    #[test]
    fn argon2_hashes_with_other_parameters_verify_and_ask_for_a_rehash() -> Result<(), PasswordError>
    {
        // Weaker ones, and the 19 MiB × 2 passes new hashes used before.
        for (m, t) in [(8 * 1024, 1), (19 * 1024, 2)] {
            let params =
                Params::new(m, t, 1, None).map_err(|e| PasswordError::Hashing(e.to_string()))?;
            let other = Argon2::new(Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password(b"pw", &SaltString::generate(&mut OsRng))
                .map_err(|e| PasswordError::Hashing(e.to_string()))?
                .to_string();
            assert_eq!(
                verify("pw", &other),
                Verification::Valid { needs_rehash: true },
                "{other}"
            );
            assert_eq!(verify("pv", &other), Verification::Invalid);
        }
        Ok(())
    }

    #[test]
    fn malformed_stored_hashes_are_invalid_and_never_panic() {
        let cases = [
            "",
            "$",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$bad$bad",
            "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
            "md5$salt$hash",
            "pbkdf2_sha256",
            "pbkdf2_sha256$",
            "pbkdf2_sha256$abc$salt1234$qjh4xre6GKpwecyN6xWgddRVZv0rQnXP18CEh++p/aw=",
            "pbkdf2_sha256$0$salt1234$qjh4xre6GKpwecyN6xWgddRVZv0rQnXP18CEh++p/aw=",
            "pbkdf2_sha256$4294967295$salt1234$qjh4xre6GKpwecyN6xWgddRVZv0rQnXP18CEh++p/aw=",
            "pbkdf2_sha256$260000$$qjh4xre6GKpwecyN6xWgddRVZv0rQnXP18CEh++p/aw=",
            "pbkdf2_sha256$260000$salt1234$not base64!",
            "pbkdf2_sha256$260000$salt1234$c2hvcnQ=",
            "pbkdf2_sha256$260000$salt1234$qjh4xre6GKpwecyN6xWgddRVZv0rQnXP18CEh++p/aw=$extra",
            "pbkdf2_sha1$260000$salt1234$qjh4xre6GKpwecyN6xWgddRVZv0rQnXP18CEh++p/aw=",
        ];
        for stored in cases {
            assert_eq!(
                verify("correct horse", stored),
                Verification::Invalid,
                "{stored}"
            );
        }
    }

    #[test]
    fn a_strong_password_passes_the_policy() {
        assert_eq!(
            validate_policy("Tr0ub4dor&3x", "alice", "alice@example.com"),
            Ok(())
        );
    }

    #[test]
    fn short_numeric_and_common_passwords_are_refused() {
        let short = validate_policy("abc", "alice", "alice@example.com");
        assert!(short.is_err_and(|e| e.len() == 1 && e[0].contains("too short")));
        let numeric = validate_policy("9384756102", "alice", "alice@example.com");
        assert!(numeric.is_err_and(|e| e.len() == 1 && e[0].contains("entirely numeric")));
        let common = validate_policy("PassWord123", "alice", "alice@example.com");
        assert!(common.is_err_and(|e| e.len() == 1 && e[0].contains("too common")));
    }

    #[test]
    fn a_password_equal_to_the_username_or_email_is_refused() {
        let username = validate_policy("AliceSmith", "alicesmith", "a@example.com");
        assert!(username.is_err_and(|e| e.iter().any(|m| m.contains("username"))));
        let email = validate_policy("Alice@Example.com", "bob", "alice@example.com");
        assert!(email.is_err_and(|e| e.iter().any(|m| m.contains("email"))));
        let local = validate_policy("ALICE.SMITH", "bob", "alice.smith@example.com");
        assert!(local.is_err_and(|e| e.iter().any(|m| m.contains("email"))));
    }

    #[test]
    fn every_applicable_policy_message_is_returned() {
        let all = validate_policy("1234", "1234", "1234@example.com");
        assert!(all.is_err_and(|e| e.len() == 5));
    }
}
