//! The connection handshake: Noise `XXpsk0` keyed by a network key, with
//! each side's feed identity bound to its Noise static key.
//!
//! This module is sans-io. A [`Handshake`] produces the bytes to send and
//! consumes the bytes received (each one Noise message, carried in one frame
//! of [`crate::proto::frame`]); once finished it yields a [`Transport`] that
//! encrypts and decrypts the messages of the replication protocol, and the
//! verified [`FeedId`] of the peer. See `docs/protocol.md`, section
//! "Handshake".
//!
//! Message flow (`->` from the initiator, who dialed; `<-` from the
//! responder):
//!
//! ```text
//! -> psk, e                 payload: empty
//! <- e, ee, s, es           payload: responder identity (96 bytes)
//! -> s, se                  payload: initiator identity (96 bytes)
//! ```
//!
//! - The pre-shared key is the 32-byte [`NetworkKey`], mixed in before the
//!   first message (`psk0`). A responder whose network key differs cannot
//!   authenticate message 1 and rejects it; the initiator then learns
//!   nothing, not even who the responder is, because the responder's
//!   identity only travels, encrypted, in message 2.
//! - The identity payload is `feed key (32) || signature (64)`, where the
//!   signature is the sender's Ed25519 signature over
//!   [`IDENTITY_DOMAIN`] `||` its own Noise static public key. Each side
//!   checks the other's payload (length, key, strict signature, and for the
//!   initiator the pinned feed) before doing anything else; in particular
//!   the initiator reveals its own identity only after the responder proved
//!   its own.
//! - The Noise static key is a fresh X25519 key per handshake, so the only
//!   long-term key is the Ed25519 feed key.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use thiserror::Error;

use crate::feed::message::FeedId;
use crate::proto::frame::MAX_FRAME;

/// What a responder with no room for another connection sends, as one
/// frame, instead of handshake message 2, before it closes. Every message
/// 2 is longer than these four bytes, so a dialer cannot mistake one for
/// the other; it reports "busy" instead of guessing a wrong network key.
pub const BUSY_MESSAGE: &[u8] = b"BUSY";

/// The Noise protocol name, exactly as it is hashed into the handshake.
pub const NOISE_PATTERN: &str = "Noise_XXpsk0_25519_ChaChaPoly_BLAKE2s";
/// The Noise prologue: the protocol name and version. A peer speaking
/// another version fails exactly like a peer with another network key.
pub const PROLOGUE: &[u8] = b"potluck/1";
/// Domain-separation tag prepended to the Noise static key before signing
/// it with the feed key.
pub const IDENTITY_DOMAIN: &[u8] = b"potluck-noise-identity-v1:";
/// Length of an identity payload: feed key (32) and signature (64).
pub const IDENTITY_PAYLOAD_LEN: usize = 32 + 64;
/// The largest handshake message accepted. Honest messages are 48, 192 and
/// 160 bytes long.
pub const MAX_HANDSHAKE_MESSAGE: usize = 1024;

/// Length of a Noise (ChaChaPoly) authentication tag.
const TAG_LEN: usize = 16;
/// Length of an X25519 public key.
const DH_LEN: usize = 32;

/// A failure in the handshake or in the encrypted transport that follows.
///
/// Apart from [`BadNetworkKey`](Self::BadNetworkKey) (a configuration
/// error) and [`TooLarge`](Self::TooLarge) from [`Transport::encrypt`] (a
/// caller error that leaves the transport usable), every error means the
/// connection must be closed: the [`Handshake`] or [`Transport`] that
/// returned it refuses further use.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// The responder could not authenticate the first handshake message.
    /// The dialer uses another network key, speaks another protocol
    /// version, or is not a potluck node at all.
    #[error(
        "the peer is not on this network (it uses a different network key or \
         protocol version) or sent garbage"
    )]
    WrongNetworkKey,
    /// Handshake message 2 or 3 failed to decrypt or authenticate: it was
    /// corrupted or tampered with on the way, or the peer is broken.
    #[error(
        "handshake message {message} failed to authenticate: it was corrupted or tampered with"
    )]
    Unauthenticated {
        /// Which handshake message (2 or 3).
        message: u8,
    },
    /// The peer's handshake payload is not a well-formed identity payload.
    #[error("the peer sent a malformed handshake payload: {reason}")]
    BadPayload {
        /// What is wrong with it.
        reason: String,
    },
    /// The peer's identity signature does not verify: it does not own the
    /// feed key it claims, or it signed some other Noise key.
    #[error(
        "the peer's identity signature does not verify: it cannot prove it owns the feed it claims"
    )]
    BadIdentitySignature,
    /// The responder proved an identity other than the one the dialer
    /// asked for.
    #[error("expected to reach {expected} but the peer is {got}")]
    UnexpectedPeer {
        /// The feed the dialer pinned.
        expected: FeedId,
        /// The feed the responder proved it owns.
        got: FeedId,
    },
    /// A message longer than allowed: a handshake message over
    /// [`MAX_HANDSHAKE_MESSAGE`], a ciphertext over [`MAX_FRAME`], or a
    /// plaintext over [`Transport::MAX_PLAINTEXT`].
    #[error("message is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The responder answered [`BUSY_MESSAGE`] instead of message 2: it
    /// has no room for another connection now.
    #[error("the node is busy (it has no free connection slot); try again later")]
    Busy,
    /// A call at the wrong moment: reading when it is our turn to write,
    /// reading after the handshake finished, or finishing before it did.
    #[error("handshake step out of order (wrong turn, or not finished yet)")]
    OutOfOrder,
    /// The handshake already failed; it cannot be continued.
    #[error("the handshake already failed; start a new connection")]
    Aborted,
    /// A transport message failed to decrypt or authenticate: it was
    /// corrupted, tampered with, truncated, replayed or reordered.
    #[error(
        "an encrypted message failed to authenticate: it was corrupted, tampered with, \
         replayed or reordered"
    )]
    TransportDecrypt,
    /// The transport already saw a message that failed to authenticate, or
    /// ran out of nonces; it cannot be used any more.
    #[error("the encrypted session is broken by an earlier error; start a new connection")]
    TransportBroken,
    /// One direction of the transport has used all 2^64 - 1 nonces.
    #[error("the encrypted session has used all its nonces; start a new connection")]
    NonceExhausted,
    /// A network key that is not 64 hexadecimal characters.
    #[error("invalid network key: {reason} (expected 64 hexadecimal characters)")]
    BadNetworkKey {
        /// What is wrong with it.
        reason: String,
    },
    /// Any other failure inside the Noise library (for example the system
    /// random number generator failed).
    #[error("noise protocol error: {0}")]
    Noise(String),
}

fn noise_error(e: snow::Error) -> HandshakeError {
    match e {
        snow::Error::State(snow::error::StateProblem::Exhausted) => HandshakeError::NonceExhausted,
        other => HandshakeError::Noise(other.to_string()),
    }
}

/// The 32-byte network key, used as the Noise pre-shared key. Only nodes
/// with the same network key can connect to each other.
#[derive(Clone, PartialEq, Eq)]
pub struct NetworkKey(pub [u8; 32]);

/// The network key of the public potluck network: the BLAKE3 hash of the
/// 25 ASCII bytes `potluck public network v1` (no terminator), which is
/// `88c200fb4f2c19425cef59088a031030920f74eb9976b1a425332985c3ab77f7`.
///
/// Hard-coded because a `const` cannot call BLAKE3; the unit test
/// `default_network_key_is_blake3_of_its_label` recomputes it.
pub const DEFAULT_NETWORK_KEY: NetworkKey = NetworkKey([
    0x88, 0xc2, 0x00, 0xfb, 0x4f, 0x2c, 0x19, 0x42, 0x5c, 0xef, 0x59, 0x08, 0x8a, 0x03, 0x10, 0x30,
    0x92, 0x0f, 0x74, 0xeb, 0x99, 0x76, 0xb1, 0xa4, 0x25, 0x33, 0x29, 0x85, 0xc3, 0xab, 0x77, 0xf7,
]);

impl NetworkKey {
    /// Parses exactly 64 hexadecimal characters (either case).
    pub fn from_hex(text: &str) -> Result<NetworkKey, HandshakeError> {
        if text.len() != 64 {
            return Err(HandshakeError::BadNetworkKey {
                reason: format!("{} characters", text.chars().count()),
            });
        }
        let mut key = [0u8; 32];
        hex::decode_to_slice(text, &mut key).map_err(|_| HandshakeError::BadNetworkKey {
            reason: "not hexadecimal".into(),
        })?;
        Ok(NetworkKey(key))
    }

    /// The key as 64 lowercase hexadecimal characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl Default for NetworkKey {
    fn default() -> Self {
        DEFAULT_NETWORK_KEY
    }
}

impl fmt::Debug for NetworkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A private network's key is a secret: never print it.
        if *self == DEFAULT_NETWORK_KEY {
            f.write_str("NetworkKey(default)")
        } else {
            f.write_str("NetworkKey(<private>)")
        }
    }
}

/// The bytes a feed key signs to vouch for a Noise static key.
fn identity_signing_input(static_public: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(IDENTITY_DOMAIN.len() + static_public.len());
    input.extend_from_slice(IDENTITY_DOMAIN);
    input.extend_from_slice(static_public);
    input
}

/// `feed key || signature(IDENTITY_DOMAIN || static_public)`.
fn identity_payload(identity: &SigningKey, static_public: &[u8]) -> Vec<u8> {
    let signature = identity.sign(&identity_signing_input(static_public));
    let mut payload = Vec::with_capacity(IDENTITY_PAYLOAD_LEN);
    payload.extend_from_slice(identity.verifying_key().as_bytes());
    payload.extend_from_slice(&signature.to_bytes());
    payload
}

/// Checks a peer's identity payload against the Noise static key the peer
/// actually used, and returns the feed it proved it owns.
fn verify_identity(payload: &[u8], remote_static: Option<&[u8]>) -> Result<FeedId, HandshakeError> {
    let (feed, signature) = payload
        .split_first_chunk::<32>()
        .and_then(|(feed, rest)| Some((feed, <&[u8; 64]>::try_from(rest).ok()?)))
        .ok_or_else(|| HandshakeError::BadPayload {
            reason: format!(
                "identity payload is {} bytes, expected {IDENTITY_PAYLOAD_LEN}",
                payload.len()
            ),
        })?;
    let remote_static = remote_static
        .filter(|s| s.len() == DH_LEN)
        .ok_or_else(|| HandshakeError::Noise("peer static key missing after handshake".into()))?;
    let key = VerifyingKey::from_bytes(feed).map_err(|_| HandshakeError::BadPayload {
        reason: "the feed key is not a valid ed25519 public key".into(),
    })?;
    key.verify_strict(
        &identity_signing_input(remote_static),
        &Signature::from_bytes(signature),
    )
    .map_err(|_| HandshakeError::BadIdentitySignature)?;
    Ok(FeedId(*feed))
}

/// Where a handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Initiator: write message 1.
    SendMsg1,
    /// Initiator: read message 2.
    AwaitMsg2,
    /// Initiator: write message 3.
    SendMsg3,
    /// Responder: read message 1.
    AwaitMsg1,
    /// Responder: write message 2.
    SendMsg2,
    /// Responder: read message 3.
    AwaitMsg3,
    /// Both: ready for [`Handshake::finish`].
    Done,
    /// An error happened; everything is refused.
    Failed,
}

/// One side of a handshake in progress.
///
/// Drive it by alternately sending what [`next_outgoing`](Self::next_outgoing)
/// returns and passing each received handshake message to
/// [`read_incoming`](Self::read_incoming), until
/// [`is_finished`](Self::is_finished); then call [`finish`](Self::finish).
/// Any error is final: the handshake refuses further calls with
/// [`HandshakeError::Aborted`] and the connection should be closed.
pub struct Handshake {
    state: snow::HandshakeState,
    step: Step,
    /// Our identity payload, sent in message 2 or 3.
    payload: Vec<u8>,
    /// The feed the initiator insists on reaching.
    expect: Option<FeedId>,
    /// The peer's verified feed, once known.
    remote: Option<FeedId>,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("step", &self.step)
            .field("expect", &self.expect)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

impl Handshake {
    /// The dialing side. With `expect`, the handshake fails with
    /// [`HandshakeError::UnexpectedPeer`] unless the responder proves it
    /// owns that feed, and the initiator's own identity is then never sent.
    pub fn initiator(
        identity: &SigningKey,
        network: &NetworkKey,
        expect: Option<FeedId>,
    ) -> Result<Handshake, HandshakeError> {
        Handshake::build(true, identity, network, PROLOGUE, expect)
    }

    /// The accepting side.
    pub fn responder(
        identity: &SigningKey,
        network: &NetworkKey,
    ) -> Result<Handshake, HandshakeError> {
        Handshake::build(false, identity, network, PROLOGUE, None)
    }

    fn build(
        initiator: bool,
        identity: &SigningKey,
        network: &NetworkKey,
        prologue: &[u8],
        expect: Option<FeedId>,
    ) -> Result<Handshake, HandshakeError> {
        let params: snow::params::NoiseParams = NOISE_PATTERN.parse().map_err(noise_error)?;
        let builder = snow::Builder::new(params);
        let mut keypair = builder.generate_keypair().map_err(noise_error)?;
        let payload = identity_payload(identity, &keypair.public);
        let builder = builder
            .local_private_key(&keypair.private)
            .and_then(|b| b.psk(0, &network.0))
            .and_then(|b| b.prologue(prologue))
            .map_err(noise_error)?;
        let state = if initiator {
            builder.build_initiator()
        } else {
            builder.build_responder()
        }
        .map_err(noise_error)?;
        // The state holds its own copy; do not leave ours lying around.
        keypair.private.fill(0);
        std::hint::black_box(&keypair.private);
        Ok(Handshake {
            state,
            step: if initiator {
                Step::SendMsg1
            } else {
                Step::AwaitMsg1
            },
            payload,
            expect,
            remote: None,
        })
    }

    /// The next handshake message to send, when it is our turn; `None`
    /// while waiting for the peer or once finished.
    pub fn next_outgoing(&mut self) -> Result<Option<Vec<u8>>, HandshakeError> {
        let (payload, next): (&[u8], Step) = match self.step {
            Step::SendMsg1 => (&[], Step::AwaitMsg2),
            Step::SendMsg2 => (&self.payload, Step::AwaitMsg3),
            Step::SendMsg3 => (&self.payload, Step::Done),
            Step::AwaitMsg1 | Step::AwaitMsg2 | Step::AwaitMsg3 | Step::Done => return Ok(None),
            Step::Failed => return Err(HandshakeError::Aborted),
        };
        let mut message = vec![0u8; MAX_HANDSHAKE_MESSAGE];
        match self.state.write_message(payload, &mut message) {
            Ok(len) => {
                message.truncate(len);
                self.step = next;
                Ok(Some(message))
            }
            Err(e) => {
                self.step = Step::Failed;
                Err(noise_error(e))
            }
        }
    }

    /// Processes one handshake message from the peer. On message 2 (for
    /// the initiator) and message 3 (for the responder) this verifies the
    /// peer's identity before anything else.
    pub fn read_incoming(&mut self, message: &[u8]) -> Result<(), HandshakeError> {
        let result = self.read_step(message);
        if result.is_err() {
            self.step = Step::Failed;
        }
        result
    }

    fn read_step(&mut self, message: &[u8]) -> Result<(), HandshakeError> {
        let number = match self.step {
            Step::AwaitMsg1 => 1,
            // Distinct from every message 2, which is longer.
            Step::AwaitMsg2 if message == BUSY_MESSAGE => return Err(HandshakeError::Busy),
            Step::AwaitMsg2 => 2,
            Step::AwaitMsg3 => 3,
            Step::Failed => return Err(HandshakeError::Aborted),
            Step::SendMsg1 | Step::SendMsg2 | Step::SendMsg3 | Step::Done => {
                return Err(HandshakeError::OutOfOrder);
            }
        };
        if message.len() > MAX_HANDSHAKE_MESSAGE {
            return Err(HandshakeError::TooLarge {
                len: message.len(),
                max: MAX_HANDSHAKE_MESSAGE,
            });
        }
        let mut payload = vec![0u8; MAX_HANDSHAKE_MESSAGE];
        let len = self
            .state
            .read_message(message, &mut payload)
            .map_err(|e| match e {
                snow::Error::Decrypt | snow::Error::Input | snow::Error::Dh if number == 1 => {
                    HandshakeError::WrongNetworkKey
                }
                snow::Error::Decrypt | snow::Error::Input | snow::Error::Dh => {
                    HandshakeError::Unauthenticated { message: number }
                }
                other => noise_error(other),
            })?;
        let payload = payload
            .get(..len)
            .ok_or_else(|| HandshakeError::Noise("payload length out of range".into()))?;
        match number {
            1 => {
                if !payload.is_empty() {
                    return Err(HandshakeError::BadPayload {
                        reason: format!("message 1 must have an empty payload, got {len} bytes"),
                    });
                }
                self.step = Step::SendMsg2;
            }
            2 => {
                let feed = verify_identity(payload, self.state.get_remote_static())?;
                if let Some(expected) = self.expect
                    && expected != feed
                {
                    return Err(HandshakeError::UnexpectedPeer {
                        expected,
                        got: feed,
                    });
                }
                self.remote = Some(feed);
                self.step = Step::SendMsg3;
            }
            _ => {
                let feed = verify_identity(payload, self.state.get_remote_static())?;
                self.remote = Some(feed);
                self.step = Step::Done;
            }
        }
        Ok(())
    }

    /// Whether the handshake completed and [`finish`](Self::finish) will
    /// succeed.
    pub fn is_finished(&self) -> bool {
        self.step == Step::Done && self.state.is_handshake_finished()
    }

    /// The peer's feed, once it has been verified (after message 2 for the
    /// initiator, message 3 for the responder).
    pub fn remote_feed(&self) -> Option<FeedId> {
        self.remote
    }

    /// The encrypted transport and the peer's verified feed. Fails with
    /// [`HandshakeError::OutOfOrder`] before the handshake is finished.
    pub fn finish(self) -> Result<(Transport, FeedId), HandshakeError> {
        if self.step == Step::Failed {
            return Err(HandshakeError::Aborted);
        }
        let remote = match self.remote {
            Some(remote) if self.is_finished() => remote,
            _ => return Err(HandshakeError::OutOfOrder),
        };
        let state = self.state.into_transport_mode().map_err(noise_error)?;
        Ok((
            Transport {
                state,
                broken: false,
            },
            remote,
        ))
    }
}

/// An established encrypted session: one Noise cipher per direction, with
/// implicit 64-bit counter nonces, so every ciphertext must be decrypted
/// exactly once, in the order it was sent.
///
/// After any decryption failure, or nonce exhaustion, it refuses all
/// further use with [`HandshakeError::TransportBroken`].
pub struct Transport {
    state: snow::TransportState,
    broken: bool,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("initiator", &self.state.is_initiator())
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Largest plaintext per message: a ciphertext (plaintext plus 16-byte
    /// tag) must fit in one frame.
    pub const MAX_PLAINTEXT: usize = MAX_FRAME - TAG_LEN;

    /// Encrypts one message. Fails with [`HandshakeError::TooLarge`] for a
    /// plaintext over [`MAX_PLAINTEXT`](Self::MAX_PLAINTEXT) (the transport
    /// stays usable) and with [`HandshakeError::NonceExhausted`] after
    /// 2^64 - 1 messages.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, HandshakeError> {
        if self.broken {
            return Err(HandshakeError::TransportBroken);
        }
        if plaintext.len() > Self::MAX_PLAINTEXT {
            return Err(HandshakeError::TooLarge {
                len: plaintext.len(),
                max: Self::MAX_PLAINTEXT,
            });
        }
        let mut out = vec![0u8; plaintext.len() + TAG_LEN];
        match self.state.write_message(plaintext, &mut out) {
            Ok(len) => {
                out.truncate(len);
                Ok(out)
            }
            Err(e) => {
                self.broken = true;
                Err(noise_error(e))
            }
        }
    }

    /// Decrypts the next message from the peer. Any tampering, truncation,
    /// replay or reordering fails with [`HandshakeError::TransportDecrypt`]
    /// and breaks the transport for good.
    pub fn decrypt(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>, HandshakeError> {
        if self.broken {
            return Err(HandshakeError::TransportBroken);
        }
        let result = self.decrypt_inner(ciphertext);
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    fn decrypt_inner(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>, HandshakeError> {
        if ciphertext.len() > MAX_FRAME {
            return Err(HandshakeError::TooLarge {
                len: ciphertext.len(),
                max: MAX_FRAME,
            });
        }
        if ciphertext.len() < TAG_LEN {
            return Err(HandshakeError::TransportDecrypt);
        }
        let mut out = vec![0u8; ciphertext.len() - TAG_LEN];
        let len = self
            .state
            .read_message(ciphertext, &mut out)
            .map_err(|e| match e {
                snow::Error::Decrypt | snow::Error::Input => HandshakeError::TransportDecrypt,
                other => noise_error(other),
            })?;
        out.truncate(len);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::generate(&mut rand::rngs::OsRng)
    }

    fn feed(key: &SigningKey) -> FeedId {
        FeedId(key.verifying_key().to_bytes())
    }

    /// Runs a handshake to completion, returning both sides' results.
    fn run(initiator: &mut Handshake, responder: &mut Handshake) -> Result<(), HandshakeError> {
        let m1 = initiator
            .next_outgoing()?
            .ok_or(HandshakeError::OutOfOrder)?;
        assert_eq!(initiator.next_outgoing()?, None);
        responder.read_incoming(&m1)?;
        let m2 = responder
            .next_outgoing()?
            .ok_or(HandshakeError::OutOfOrder)?;
        initiator.read_incoming(&m2)?;
        let m3 = initiator
            .next_outgoing()?
            .ok_or(HandshakeError::OutOfOrder)?;
        responder.read_incoming(&m3)?;
        Ok(())
    }

    fn pair(expect: Option<FeedId>) -> (SigningKey, SigningKey, Handshake, Handshake) {
        let (a, b) = (key(), key());
        let i = Handshake::initiator(&a, &DEFAULT_NETWORK_KEY, expect).unwrap();
        let r = Handshake::responder(&b, &DEFAULT_NETWORK_KEY).unwrap();
        (a, b, i, r)
    }

    fn established() -> (Transport, Transport) {
        let (a, b, mut i, mut r) = pair(None);
        run(&mut i, &mut r).unwrap();
        let (ti, got_b) = i.finish().unwrap();
        let (tr, got_a) = r.finish().unwrap();
        assert_eq!(got_b, feed(&b));
        assert_eq!(got_a, feed(&a));
        (ti, tr)
    }

    #[test]
    fn default_network_key_is_blake3_of_its_label() {
        assert_eq!(
            DEFAULT_NETWORK_KEY.0,
            *blake3::hash(b"potluck public network v1").as_bytes()
        );
    }

    #[test]
    fn network_key_hex() {
        let hex = DEFAULT_NETWORK_KEY.to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(NetworkKey::from_hex(&hex), Ok(DEFAULT_NETWORK_KEY));
        assert_eq!(
            NetworkKey::from_hex(&hex.to_uppercase()),
            Ok(DEFAULT_NETWORK_KEY)
        );
        for bad in [
            &hex[..63],
            &format!("{hex}0"),
            &format!("{}g", &hex[..63]),
            "",
        ] {
            assert!(matches!(
                NetworkKey::from_hex(bad),
                Err(HandshakeError::BadNetworkKey { .. })
            ));
        }
        // Multi-byte characters do not slip through a byte-length check.
        assert!(NetworkKey::from_hex(&format!("é{}", &hex[..62])).is_err());
        assert_eq!(
            format!("{:?}", NetworkKey([9; 32])),
            "NetworkKey(<private>)"
        );
    }

    #[test]
    fn full_handshake_and_transport_both_ways() {
        let (a, b, mut i, mut r) = pair(None);
        assert!(!i.is_finished() && !r.is_finished());
        let m1 = i.next_outgoing().unwrap().unwrap();
        assert_eq!(m1.len(), DH_LEN + TAG_LEN);
        assert_eq!(r.next_outgoing().unwrap(), None);
        r.read_incoming(&m1).unwrap();
        let m2 = r.next_outgoing().unwrap().unwrap();
        assert_eq!(m2.len(), 192);
        assert_eq!(r.next_outgoing().unwrap(), None);
        i.read_incoming(&m2).unwrap();
        assert_eq!(i.remote_feed(), Some(feed(&b)));
        let m3 = i.next_outgoing().unwrap().unwrap();
        assert_eq!(m3.len(), 160);
        assert!(i.is_finished());
        assert_eq!(i.next_outgoing().unwrap(), None);
        assert_eq!(r.remote_feed(), None);
        r.read_incoming(&m3).unwrap();
        assert!(r.is_finished());
        assert_eq!(r.remote_feed(), Some(feed(&a)));

        let (mut ti, got_b) = i.finish().unwrap();
        let (mut tr, got_a) = r.finish().unwrap();
        assert_eq!((got_a, got_b), (feed(&a), feed(&b)));
        for n in 0..5u8 {
            let c = ti.encrypt(&[n; 100]).unwrap();
            assert_eq!(c.len(), 100 + TAG_LEN);
            assert_ne!(&c[..100], &[n; 100][..]);
            assert_eq!(tr.decrypt(&c).unwrap(), vec![n; 100]);
            let c = tr.encrypt(b"back").unwrap();
            assert_eq!(ti.decrypt(&c).unwrap(), b"back");
        }
        let empty = ti.encrypt(b"").unwrap();
        assert_eq!(tr.decrypt(&empty).unwrap(), b"");
    }

    #[test]
    fn a_busy_answer_instead_of_message_two_says_busy() {
        let (_, _, mut i, mut r) = pair(None);
        let m1 = i.next_outgoing().unwrap().unwrap();
        r.read_incoming(&m1).unwrap();
        assert_eq!(i.read_incoming(BUSY_MESSAGE), Err(HandshakeError::Busy));
        // Only the dialer waiting for message 2 takes it as busy.
        let (_, _, _, mut r) = pair(None);
        assert_eq!(
            r.read_incoming(BUSY_MESSAGE),
            Err(HandshakeError::WrongNetworkKey)
        );
    }

    #[test]
    fn pinned_peer_matches() {
        let b = key();
        let mut i = Handshake::initiator(&key(), &DEFAULT_NETWORK_KEY, Some(feed(&b))).unwrap();
        let mut r = Handshake::responder(&b, &DEFAULT_NETWORK_KEY).unwrap();
        run(&mut i, &mut r).unwrap();
        assert_eq!(i.finish().unwrap().1, feed(&b));
    }

    #[test]
    fn private_network_key_works_when_shared() {
        let net = NetworkKey([42; 32]);
        let mut i = Handshake::initiator(&key(), &net, None).unwrap();
        let mut r = Handshake::responder(&key(), &net).unwrap();
        run(&mut i, &mut r).unwrap();
    }

    #[test]
    fn wrong_network_key_is_rejected_at_message_1() {
        let mut i = Handshake::initiator(&key(), &NetworkKey([1; 32]), None).unwrap();
        let mut r = Handshake::responder(&key(), &NetworkKey([2; 32])).unwrap();
        let m1 = i.next_outgoing().unwrap().unwrap();
        assert_eq!(r.read_incoming(&m1), Err(HandshakeError::WrongNetworkKey));
        // The responder has nothing to send: the dialer gets no bytes.
        assert_eq!(r.next_outgoing(), Err(HandshakeError::Aborted));
        assert_eq!(r.read_incoming(&m1), Err(HandshakeError::Aborted));
        assert!(!r.is_finished());
        assert_eq!(r.remote_feed(), None);
        assert!(matches!(r.finish(), Err(HandshakeError::Aborted)));
        assert_eq!(i.next_outgoing(), Ok(None));
        assert_eq!(i.remote_feed(), None);
    }

    #[test]
    fn wrong_prologue_is_rejected_at_message_1() {
        let mut i =
            Handshake::build(true, &key(), &DEFAULT_NETWORK_KEY, b"potluck/2", None).unwrap();
        let mut r = Handshake::responder(&key(), &DEFAULT_NETWORK_KEY).unwrap();
        let m1 = i.next_outgoing().unwrap().unwrap();
        assert_eq!(r.read_incoming(&m1), Err(HandshakeError::WrongNetworkKey));
    }

    #[test]
    fn garbage_message_1_is_rejected() {
        for garbage in [&[][..], &[0u8; 10][..], &[0u8; 48][..], &[7u8; 200][..]] {
            let mut r = Handshake::responder(&key(), &DEFAULT_NETWORK_KEY).unwrap();
            assert_eq!(
                r.read_incoming(garbage),
                Err(HandshakeError::WrongNetworkKey)
            );
        }
    }

    #[test]
    fn oversize_handshake_message_is_rejected() {
        let mut r = Handshake::responder(&key(), &DEFAULT_NETWORK_KEY).unwrap();
        assert_eq!(
            r.read_incoming(&[0u8; MAX_HANDSHAKE_MESSAGE + 1]),
            Err(HandshakeError::TooLarge {
                len: MAX_HANDSHAKE_MESSAGE + 1,
                max: MAX_HANDSHAKE_MESSAGE
            })
        );
    }

    #[test]
    fn pinned_feed_mismatch_fails_on_message_2() {
        let (expected, b) = (key(), key());
        let mut i =
            Handshake::initiator(&key(), &DEFAULT_NETWORK_KEY, Some(feed(&expected))).unwrap();
        let mut r = Handshake::responder(&b, &DEFAULT_NETWORK_KEY).unwrap();
        r.read_incoming(&i.next_outgoing().unwrap().unwrap())
            .unwrap();
        let m2 = r.next_outgoing().unwrap().unwrap();
        assert_eq!(
            i.read_incoming(&m2),
            Err(HandshakeError::UnexpectedPeer {
                expected: feed(&expected),
                got: feed(&b)
            })
        );
        // The initiator never sends its identity.
        assert_eq!(i.next_outgoing(), Err(HandshakeError::Aborted));
        assert!(matches!(i.finish(), Err(HandshakeError::Aborted)));
    }

    #[test]
    fn tampered_message_2_fails() {
        for at in [0, 31, 32, 70, 100, 150, 191] {
            let (_, _, mut i, mut r) = pair(None);
            r.read_incoming(&i.next_outgoing().unwrap().unwrap())
                .unwrap();
            let mut m2 = r.next_outgoing().unwrap().unwrap();
            m2[at] ^= 0x01;
            assert_eq!(
                i.read_incoming(&m2),
                Err(HandshakeError::Unauthenticated { message: 2 }),
                "flipped byte {at}"
            );
            assert_eq!(i.next_outgoing(), Err(HandshakeError::Aborted));
        }
        // Truncated and extended.
        for change in [-1isize, 1] {
            let (_, _, mut i, mut r) = pair(None);
            r.read_incoming(&i.next_outgoing().unwrap().unwrap())
                .unwrap();
            let mut m2 = r.next_outgoing().unwrap().unwrap();
            if change < 0 {
                m2.pop();
            } else {
                m2.push(0);
            }
            assert_eq!(
                i.read_incoming(&m2),
                Err(HandshakeError::Unauthenticated { message: 2 })
            );
        }
    }

    #[test]
    fn tampered_message_3_fails() {
        for at in [0, 31, 47, 48, 100, 159] {
            let (_, _, mut i, mut r) = pair(None);
            r.read_incoming(&i.next_outgoing().unwrap().unwrap())
                .unwrap();
            i.read_incoming(&r.next_outgoing().unwrap().unwrap())
                .unwrap();
            let mut m3 = i.next_outgoing().unwrap().unwrap();
            m3[at] ^= 0x80;
            assert_eq!(
                r.read_incoming(&m3),
                Err(HandshakeError::Unauthenticated { message: 3 }),
                "flipped byte {at}"
            );
            assert!(!r.is_finished());
            assert!(matches!(r.finish(), Err(HandshakeError::Aborted)));
        }
    }

    /// A malicious side whose identity payload is replaced with `payload`.
    fn with_payload(mut hs: Handshake, payload: Vec<u8>) -> Handshake {
        hs.payload = payload;
        hs
    }

    /// A valid-looking payload, signed by `identity` but over a Noise key
    /// other than the one the handshake uses.
    fn payload_over_other_static(identity: &SigningKey) -> Vec<u8> {
        let other_static = [0x5a; 32];
        identity_payload(identity, &other_static)
    }

    #[test]
    fn responder_signing_another_static_key_is_rejected() {
        let b = key();
        let mut i = Handshake::initiator(&key(), &DEFAULT_NETWORK_KEY, None).unwrap();
        let mut r = with_payload(
            Handshake::responder(&b, &DEFAULT_NETWORK_KEY).unwrap(),
            payload_over_other_static(&b),
        );
        r.read_incoming(&i.next_outgoing().unwrap().unwrap())
            .unwrap();
        let m2 = r.next_outgoing().unwrap().unwrap();
        assert_eq!(
            i.read_incoming(&m2),
            Err(HandshakeError::BadIdentitySignature)
        );
        assert_eq!(i.remote_feed(), None);
    }

    #[test]
    fn initiator_signing_another_static_key_is_rejected() {
        let a = key();
        let mut i = with_payload(
            Handshake::initiator(&a, &DEFAULT_NETWORK_KEY, None).unwrap(),
            payload_over_other_static(&a),
        );
        let mut r = Handshake::responder(&key(), &DEFAULT_NETWORK_KEY).unwrap();
        assert_eq!(
            run(&mut i, &mut r),
            Err(HandshakeError::BadIdentitySignature)
        );
        assert_eq!(r.remote_feed(), None);
        assert!(matches!(r.finish(), Err(HandshakeError::Aborted)));
    }

    #[test]
    fn claiming_someone_elses_feed_is_rejected() {
        // The payload names victim's feed but carries the attacker's
        // signature over the right static key.
        let (attacker, victim) = (key(), key());
        let mut r = Handshake::responder(&attacker, &DEFAULT_NETWORK_KEY).unwrap();
        let mut forged = r.payload.clone();
        forged[..32].copy_from_slice(victim.verifying_key().as_bytes());
        r.payload = forged;
        let mut i =
            Handshake::initiator(&key(), &DEFAULT_NETWORK_KEY, Some(feed(&victim))).unwrap();
        assert_eq!(
            run(&mut i, &mut r),
            Err(HandshakeError::BadIdentitySignature)
        );
    }

    #[test]
    fn small_order_feed_key_is_rejected() {
        // Identity point as key, R = identity, S = 0: a "signature" that a
        // lenient verifier accepts for every message. verify_strict refuses.
        let mut payload = vec![0u8; IDENTITY_PAYLOAD_LEN];
        payload[0] = 1;
        payload[32] = 1;
        let mut r = with_payload(
            Handshake::responder(&key(), &DEFAULT_NETWORK_KEY).unwrap(),
            payload,
        );
        let mut i = Handshake::initiator(&key(), &DEFAULT_NETWORK_KEY, None).unwrap();
        assert_eq!(
            run(&mut i, &mut r),
            Err(HandshakeError::BadIdentitySignature)
        );
    }

    #[test]
    fn malformed_payloads_are_rejected() {
        let b = key();
        let good = Handshake::responder(&b, &DEFAULT_NETWORK_KEY)
            .unwrap()
            .payload;
        let mut not_a_point = good.clone();
        let undecodable = (0..=255u8)
            .map(|x| {
                let mut k = [0u8; 32];
                k[0] = x;
                k[31] = 0x7f;
                k
            })
            .find(|k| VerifyingKey::from_bytes(k).is_err())
            .unwrap();
        not_a_point[..32].copy_from_slice(&undecodable);
        for payload in [
            vec![],
            good[..95].to_vec(),
            [&good[..], &[0]].concat(),
            not_a_point,
        ] {
            let mut r = with_payload(
                Handshake::responder(&b, &DEFAULT_NETWORK_KEY).unwrap(),
                payload.clone(),
            );
            let mut i = Handshake::initiator(&key(), &DEFAULT_NETWORK_KEY, None).unwrap();
            assert!(
                matches!(run(&mut i, &mut r), Err(HandshakeError::BadPayload { .. })),
                "payload of {} bytes",
                payload.len()
            );
        }
    }

    #[test]
    fn non_empty_message_1_payload_is_rejected() {
        let mut i = Handshake::initiator(&key(), &DEFAULT_NETWORK_KEY, None).unwrap();
        let mut r = Handshake::responder(&key(), &DEFAULT_NETWORK_KEY).unwrap();
        // Write message 1 with a payload by driving snow directly.
        let mut m1 = vec![0u8; 200];
        let len = i.state.write_message(b"hello", &mut m1).unwrap();
        m1.truncate(len);
        assert!(matches!(
            r.read_incoming(&m1),
            Err(HandshakeError::BadPayload { .. })
        ));
    }

    #[test]
    fn calls_out_of_order_are_refused() {
        let (_, _, mut i, r) = pair(None);
        assert_eq!(i.read_incoming(b"early"), Err(HandshakeError::OutOfOrder));
        assert_eq!(i.next_outgoing(), Err(HandshakeError::Aborted));
        assert!(matches!(r.finish(), Err(HandshakeError::OutOfOrder)));

        let (_, _, mut i, mut r) = pair(None);
        run(&mut i, &mut r).unwrap();
        assert_eq!(r.read_incoming(b"late"), Err(HandshakeError::OutOfOrder));
        assert!(matches!(r.finish(), Err(HandshakeError::Aborted)));
    }

    #[test]
    fn message_2_replayed_into_another_handshake_fails() {
        let (_, _, mut i1, mut r1) = pair(None);
        r1.read_incoming(&i1.next_outgoing().unwrap().unwrap())
            .unwrap();
        let m2 = r1.next_outgoing().unwrap().unwrap();
        let (_, _, mut i2, _) = pair(None);
        i2.next_outgoing().unwrap().unwrap();
        assert_eq!(
            i2.read_incoming(&m2),
            Err(HandshakeError::Unauthenticated { message: 2 })
        );
    }

    #[test]
    fn tampered_ciphertext_fails_and_breaks_the_transport() {
        let (mut ti, mut tr) = established();
        let c = ti.encrypt(b"hello").unwrap();
        for at in [0, 4, 5, 20] {
            let (mut ti, mut tr) = established();
            let mut c = ti.encrypt(b"hello").unwrap();
            c[at] ^= 1;
            assert_eq!(tr.decrypt(&c), Err(HandshakeError::TransportDecrypt));
        }
        let mut bad = c.clone();
        bad.pop();
        assert_eq!(tr.decrypt(&bad), Err(HandshakeError::TransportDecrypt));
        // Even the genuine message is refused now.
        assert_eq!(tr.decrypt(&c), Err(HandshakeError::TransportBroken));
        assert_eq!(tr.encrypt(b"x"), Err(HandshakeError::TransportBroken));
        assert_eq!(tr.decrypt(&[]), Err(HandshakeError::TransportBroken));
    }

    #[test]
    fn short_ciphertext_fails() {
        let (_, mut tr) = established();
        assert_eq!(tr.decrypt(&[0; 15]), Err(HandshakeError::TransportDecrypt));
    }

    #[test]
    fn replayed_ciphertext_fails() {
        let (mut ti, mut tr) = established();
        let c = ti.encrypt(b"once").unwrap();
        assert_eq!(tr.decrypt(&c).unwrap(), b"once");
        assert_eq!(tr.decrypt(&c), Err(HandshakeError::TransportDecrypt));
    }

    #[test]
    fn reordered_ciphertext_fails() {
        let (mut ti, mut tr) = established();
        let _first = ti.encrypt(b"first").unwrap();
        let second = ti.encrypt(b"second").unwrap();
        assert_eq!(tr.decrypt(&second), Err(HandshakeError::TransportDecrypt));
    }

    #[test]
    fn reflected_ciphertext_fails() {
        // A message bounced back to its sender does not decrypt: each
        // direction has its own key.
        let (mut ti, _) = established();
        let c = ti.encrypt(b"mine").unwrap();
        assert_eq!(ti.decrypt(&c), Err(HandshakeError::TransportDecrypt));
    }

    #[test]
    fn plaintext_size_limit() {
        let (mut ti, mut tr) = established();
        let max = vec![3u8; Transport::MAX_PLAINTEXT];
        let c = ti.encrypt(&max).unwrap();
        assert_eq!(c.len(), MAX_FRAME);
        assert_eq!(tr.decrypt(&c).unwrap(), max);
        assert_eq!(
            ti.encrypt(&vec![0u8; Transport::MAX_PLAINTEXT + 1]),
            Err(HandshakeError::TooLarge {
                len: Transport::MAX_PLAINTEXT + 1,
                max: Transport::MAX_PLAINTEXT
            })
        );
        // A refused plaintext does not consume a nonce or break anything.
        let c = ti.encrypt(b"after").unwrap();
        assert_eq!(tr.decrypt(&c).unwrap(), b"after");
        assert_eq!(
            tr.decrypt(&vec![0u8; MAX_FRAME + 1]),
            Err(HandshakeError::TooLarge {
                len: MAX_FRAME + 1,
                max: MAX_FRAME
            })
        );
    }

    #[test]
    fn nonce_exhaustion_is_an_error() {
        let (mut ti, mut tr) = established();
        let c = ti.encrypt(b"x").unwrap();
        tr.state.set_receiving_nonce(u64::MAX);
        assert_eq!(tr.decrypt(&c), Err(HandshakeError::NonceExhausted));
        assert_eq!(tr.decrypt(&c), Err(HandshakeError::TransportBroken));
    }

    #[test]
    fn handshake_and_transport_are_send() {
        fn is_send<T: Send>() {}
        is_send::<Handshake>();
        is_send::<Transport>();
        is_send::<HandshakeError>();
    }
}
