//! Signs webhooks the way Benchling does: ES256 with a P-256 key over
//! `"{webhook-id}.{webhook-timestamp}.{body}"`, DER signature, base64, in a `v1der,` item.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

/// A freshly generated P-256 signing key.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    kid: String,
    rng: SystemRandom,
}

/// The three webhook headers for one signed body.
#[derive(Clone, Debug)]
pub struct SignedHeaders {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp`.
    pub timestamp: String,
    /// `webhook-signature`.
    pub signature: String,
}

impl SignedHeaders {
    /// The headers as name/value pairs.
    pub fn pairs(&self) -> [(&'static str, String); 3] {
        [
            ("webhook-id", self.id.clone()),
            ("webhook-timestamp", self.timestamp.clone()),
            ("webhook-signature", self.signature.clone()),
        ]
    }
}

/// Seconds since the epoch, now.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl SigningKey {
    /// Generates a key with key id `kid`.
    ///
    /// # Panics
    /// If the system random source fails.
    pub fn generate(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .expect("generate a P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
            .expect("load the generated key");
        Self {
            pair,
            kid: kid.to_owned(),
            rng,
        }
    }

    /// Loads a key saved with [`SigningKey::to_pkcs8`], so a signer in one process and a JWKS
    /// stand-in in another can share it (the load benchmark signs ahead of each run).
    ///
    /// # Errors
    /// If `pkcs8` is not a P-256 private key in PKCS#8 DER.
    pub fn from_pkcs8(kid: &str, pkcs8: &[u8]) -> Result<Self, aws_lc_rs::error::KeyRejected> {
        Ok(Self {
            pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8)?,
            kid: kid.to_owned(),
            rng: SystemRandom::new(),
        })
    }

    /// The private key as PKCS#8 v1 DER, for [`SigningKey::from_pkcs8`].
    ///
    /// # Panics
    /// If the key cannot be serialized (it can for every key this type holds).
    pub fn to_pkcs8(&self) -> Vec<u8> {
        self.pair
            .to_pkcs8v1()
            .expect("serialize a P-256 key")
            .as_ref()
            .to_vec()
    }

    /// The public key as a JWK (`kty` EC, `crv` P-256).
    pub fn jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        json!({
            "kty": "EC",
            "crv": "P-256",
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        })
    }

    /// The base64 DER signature of the signed content.
    ///
    /// # Panics
    /// If signing fails (it does not for a valid key).
    pub fn signature(&self, id: &str, timestamp: &str, body: &[u8]) -> String {
        let mut message = format!("{id}.{timestamp}.").into_bytes();
        message.extend_from_slice(body);
        let sig = self.pair.sign(&self.rng, &message).expect("sign");
        STANDARD.encode(sig.as_ref())
    }

    /// Headers for `body` delivered as `id` at `timestamp`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> SignedHeaders {
        let timestamp = timestamp.to_string();
        SignedHeaders {
            signature: format!("v1der,{}", self.signature(id, &timestamp, body)),
            id: id.to_owned(),
            timestamp,
        }
    }
}
