//! The error type of the storage layer.

/// Why a storage call failed. Bad data in the database is an error value, never a panic.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no supported database; only the scheme is shown, never credentials.
    #[error(
        "unsupported database URL scheme `{scheme}`: use sqlite://PATH?mode=rwc, postgres://… or mysql://…"
    )]
    UnsupportedUrl { scheme: String },
    #[error("unknown conversation `{0}`")]
    UnknownConversation(String),
    #[error("conversation `{0}` already exists")]
    ConversationExists(String),
    #[error("an account with login `{0}` already exists")]
    UserExists(String),
    #[error("there is no account `{0}`")]
    UnknownUser(String),
    /// A published flow version is immutable.
    #[error(
        "flow `{id}` version {version} is already published with content hash {existing} (not {attempted}); publish it as a new version"
    )]
    FlowVersionConflict {
        id: String,
        version: u32,
        existing: String,
        attempted: String,
    },
    /// A numbered message's sequence number or client id is already taken in its conversation
    /// (see [`Store::commit`](super::Store::commit)); nothing of the transaction was stored.
    #[error("a message with this sequence number or client id is already stored")]
    MessageExists,
    /// The database holds a value this version of kefu cannot read.
    #[error("invalid stored data: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The result type of the storage layer.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
