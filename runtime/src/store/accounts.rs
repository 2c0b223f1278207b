//! Teams, users and signed-in sessions (migration `0002`).

use super::{Pool, Result, Store, StoreError, is_unique_violation};

/// A team (department): every account belongs to one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Team {
    pub id: String,
    pub name: String,
}

/// An account as the rest of the server sees it (never with its password hash).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct User {
    pub id: String,
    pub login: String,
    pub name: String,
    /// `admin` or `agent`.
    pub role: String,
    pub team: Team,
    /// Conversations the agent takes at once.
    pub capacity: i64,
}

/// An account to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub id: String,
    pub login: String,
    pub name: String,
    pub role: String,
    pub team_id: String,
    pub password_hash: String,
    pub capacity: i64,
    pub created_at: i64,
}

/// The statements of one dialect.
struct AccountSql {
    insert_team: &'static str,
    insert_user: &'static str,
    count_users: &'static str,
    user_by_login: &'static str,
    user_by_id: &'static str,
    users: &'static str,
    insert_session: &'static str,
    session: &'static str,
    delete_session: &'static str,
}

const SQLITE: AccountSql = AccountSql {
    insert_team: "INSERT INTO teams (id, name) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
    insert_user: "INSERT INTO users (id, login, name, role, team_id, password_hash, capacity, created_at) \
                  VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    count_users: "SELECT COUNT(*) FROM users",
    user_by_login: "SELECT u.id, u.login, u.name, u.role, t.id, t.name, u.capacity, u.password_hash \
                    FROM users u JOIN teams t ON t.id = u.team_id WHERE u.login = ?",
    user_by_id: "SELECT u.id, u.login, u.name, u.role, t.id, t.name, u.capacity \
                 FROM users u JOIN teams t ON t.id = u.team_id WHERE u.id = ?",
    users: "SELECT u.id, u.login, u.name, u.role, t.id, t.name, u.capacity \
            FROM users u JOIN teams t ON t.id = u.team_id ORDER BY u.login",
    insert_session: "INSERT INTO auth_sessions (token_hash, user_id, csrf, created_at, expires_at) \
                     VALUES (?, ?, ?, ?, ?)",
    session: "SELECT u.id, u.login, u.name, u.role, t.id, t.name, u.capacity, s.csrf \
              FROM auth_sessions s JOIN users u ON u.id = s.user_id JOIN teams t ON t.id = u.team_id \
              WHERE s.token_hash = ? AND s.expires_at > ?",
    delete_session: "DELETE FROM auth_sessions WHERE token_hash = ?",
};

const POSTGRES: AccountSql = AccountSql {
    insert_team: "INSERT INTO teams (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
    insert_user: "INSERT INTO users (id, login, name, role, team_id, password_hash, capacity, created_at) \
                  VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    count_users: "SELECT COUNT(*) FROM users",
    user_by_login: "SELECT u.id, u.login, u.name, u.role, t.id, t.name, u.capacity::BIGINT, u.password_hash \
                    FROM users u JOIN teams t ON t.id = u.team_id WHERE u.login = $1",
    user_by_id: "SELECT u.id, u.login, u.name, u.role, t.id, t.name, u.capacity::BIGINT \
                 FROM users u JOIN teams t ON t.id = u.team_id WHERE u.id = $1",
    users: "SELECT u.id, u.login, u.name, u.role, t.id, t.name, u.capacity::BIGINT \
            FROM users u JOIN teams t ON t.id = u.team_id ORDER BY u.login",
    insert_session: "INSERT INTO auth_sessions (token_hash, user_id, csrf, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
    session: "SELECT u.id, u.login, u.name, u.role, t.id, t.name, u.capacity::BIGINT, s.csrf \
              FROM auth_sessions s JOIN users u ON u.id = s.user_id JOIN teams t ON t.id = u.team_id \
              WHERE s.token_hash = $1 AND s.expires_at > $2",
    delete_session: "DELETE FROM auth_sessions WHERE token_hash = $1",
};

const MYSQL: AccountSql = AccountSql {
    insert_team: "INSERT IGNORE INTO teams (id, name) VALUES (?, ?)",
    user_by_login: "SELECT u.id, u.login, u.name, u.role, t.id, t.name, CAST(u.capacity AS SIGNED), u.password_hash \
                    FROM users u JOIN teams t ON t.id = u.team_id WHERE u.login = ?",
    user_by_id: "SELECT u.id, u.login, u.name, u.role, t.id, t.name, CAST(u.capacity AS SIGNED) \
                 FROM users u JOIN teams t ON t.id = u.team_id WHERE u.id = ?",
    users: "SELECT u.id, u.login, u.name, u.role, t.id, t.name, CAST(u.capacity AS SIGNED) \
            FROM users u JOIN teams t ON t.id = u.team_id ORDER BY u.login",
    session: "SELECT u.id, u.login, u.name, u.role, t.id, t.name, CAST(u.capacity AS SIGNED), s.csrf \
              FROM auth_sessions s JOIN users u ON u.id = s.user_id JOIN teams t ON t.id = u.team_id \
              WHERE s.token_hash = ? AND s.expires_at > ?",
    ..SQLITE
};

type UserRow = (String, String, String, String, String, String, i64);

fn user_from_row((id, login, name, role, team_id, team_name, capacity): UserRow) -> User {
    User {
        id,
        login,
        name,
        role,
        team: Team {
            id: team_id,
            name: team_name,
        },
        capacity,
    }
}

impl Store {
    /// Creates a team unless one with this id exists.
    pub async fn ensure_team(&self, id: &str, name: &str) -> Result<()> {
        with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            sqlx::query(sql.insert_team).bind(id).bind(name).execute(pool).await?;
        });
        Ok(())
    }

    /// Creates an account; its id and login must be new.
    pub async fn create_user(&self, user: &NewUser) -> Result<()> {
        let inserted = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            sqlx::query(sql.insert_user)
                .bind(&user.id)
                .bind(&user.login)
                .bind(&user.name)
                .bind(&user.role)
                .bind(&user.team_id)
                .bind(&user.password_hash)
                .bind(user.capacity)
                .bind(user.created_at)
                .execute(pool)
                .await
                .map(drop)
        });
        match inserted {
            Ok(()) => Ok(()),
            Err(error) if is_unique_violation(&error) => {
                Err(StoreError::UserExists(user.login.clone()))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// How many accounts exist.
    pub async fn count_users(&self) -> Result<i64> {
        Ok(
            with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
                sqlx::query_scalar(sql.count_users).fetch_one(pool).await?
            }),
        )
    }

    /// An account and its password hash, by login.
    pub async fn user_by_login(&self, login: &str) -> Result<Option<(User, String)>> {
        type Row = (String, String, String, String, String, String, i64, String);
        let row: Option<Row> = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            sqlx::query_as(sql.user_by_login).bind(login).fetch_optional(pool).await?
        });
        Ok(row.map(
            |(id, login, name, role, team_id, team_name, capacity, hash)| {
                (
                    user_from_row((id, login, name, role, team_id, team_name, capacity)),
                    hash,
                )
            },
        ))
    }

    /// An account by id.
    pub async fn user(&self, id: &str) -> Result<Option<User>> {
        let row: Option<UserRow> = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            sqlx::query_as(sql.user_by_id).bind(id).fetch_optional(pool).await?
        });
        Ok(row.map(user_from_row))
    }

    /// Every account, by login.
    pub async fn users(&self) -> Result<Vec<User>> {
        let rows: Vec<UserRow> = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            sqlx::query_as(sql.users).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(user_from_row).collect())
    }

    /// Records a signed-in session (by the hash of its cookie token).
    pub async fn create_auth_session(
        &self,
        token_hash: &str,
        user_id: &str,
        csrf: &str,
        created_at: i64,
        expires_at: i64,
    ) -> Result<()> {
        with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            sqlx::query(sql.insert_session)
                .bind(token_hash)
                .bind(user_id)
                .bind(csrf)
                .bind(created_at)
                .bind(expires_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The account and CSRF token of a session that has not expired at `now`.
    pub async fn auth_session(&self, token_hash: &str, now: i64) -> Result<Option<(User, String)>> {
        type Row = (String, String, String, String, String, String, i64, String);
        let row: Option<Row> = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            sqlx::query_as(sql.session)
                .bind(token_hash)
                .bind(now)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(
            |(id, login, name, role, team_id, team_name, capacity, csrf)| {
                (
                    user_from_row((id, login, name, role, team_id, team_name, capacity)),
                    csrf,
                )
            },
        ))
    }

    /// Ends a session.
    pub async fn delete_auth_session(&self, token_hash: &str) -> Result<()> {
        with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            sqlx::query(sql.delete_session).bind(token_hash).execute(pool).await?;
        });
        Ok(())
    }
}
