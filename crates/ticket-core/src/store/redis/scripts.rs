//! The Lua scripts that make each multi-key step atomic, one `.lua` file each under
//! `lua/`, composed here: a script that needs the shared helpers or the shared insert
//! function has them prepended.
//!
//! Every script's arguments and replies are documented on its constant below; the `.lua`
//! files hold code only.

use redis::Script;

/// Shared Lua helpers, prepended to the scripts that need them.
///
/// `extend` pushes a key's expiry out to at least `ms` from now and never pulls it in, so
/// an index outlives every session it names. `sweep` checks `n` members of an index and
/// drops those whose session key is gone: the `n` at rank `cursor * n` (wrapping), so
/// successive sweeps, whose cursors count up, walk the whole index `n` members at a time.
/// (A walk by rank costs a few microseconds in Redis where `ZRANDMEMBER` on a large index
/// costs ten.) It returns the index's size before the sweep.
///
/// Numbers go to `redis.call` as text (`int`): Lua turns a number argument into text with
/// the C library's floating-point formatter, which costs Redis about a microsecond each.
macro_rules! lua_helpers {
    () => {
        include_str!("lua/helpers.lua")
    };
}

/// Inserts a session, within a per-user limit: the function both the session API's insert
/// and a redemption call, prepended to their scripts with [`lua_helpers`].
///
/// Arguments: the session key, the user's index, the realm index, the sequence counter,
/// the value to store, the idle time in milliseconds (as text), the limit (`0`: none),
/// whether to evict (`true`/`false`), the session key base, the session id, the user key.
///
/// With a limit, walks the user's index oldest first, dropping members whose session has
/// ended or now belongs to someone else, and counts the live ones. Then, in this order:
/// refuses with `limit` if the new session would pass the limit and eviction is off;
/// refuses with `conflict` if the id is live; ends the oldest sessions to make room; and
/// stores the new session under the next sequence number in both indexes. Returns `ok`
/// and the stored values of the evicted sessions, oldest first. Without a limit the user's
/// index is only swept for dead members, a few at a time.
///
/// Every command a script calls costs Redis a microsecond or two beyond its own work, and
/// this runs for every login, so it calls as few as it can: the realm index is swept on
/// one insert in four, eight members at a time (two per insert, which keeps the dead
/// members of an index at most as many as the live ones), and a user index that did not
/// exist gets its expiry without first being asked for one.
macro_rules! insert_session_fn {
    () => {
        include_str!("lua/insert_session_fn.lua")
    };
}

/// Inserts a session for the session API: [`insert_session_fn`].
///
/// KEYS: session key, user index, realm index, sequence counter.
/// ARGV: stored value, idle ms, limit (`0`: none), evict (`1`/`0`), session key base,
/// session id, user key.
///
/// Returns the evicted values, or the error `LIMIT` or `CONFLICT`.
const INSERT_SESSION: &str = concat!(
    lua_helpers!(),
    insert_session_fn!(),
    include_str!("lua/insert_session.lua")
);

/// Redeems a ticket into a session in one step, saving a login a round trip.
///
/// KEYS: ticket key, session key, realm index, sequence counter.
/// ARGV: the realm as JSON, the session id as JSON, idle ms, limit (`0`: none), evict
/// (`1`/`0`), session key base, session id, user index base, the session's CSRF token as
/// JSON.
///
/// Returns `{status, ticket, evicted…}`:
/// - `conflict`: a live session has the id; the ticket is left alone (nothing else).
/// - `none`: no ticket under the key (nothing else).
/// - `realm`: the ticket is another realm's; it is consumed.
/// - `legacy`: the ticket is in the form earlier versions stored (plain JSON); it is
///   consumed, and the caller starts the session itself.
/// - `limit`: the user holds the most sessions allowed; the ticket is consumed.
/// - `ok`: the session is stored; the values it evicted follow the ticket.
///
/// The session's value is spliced from the JSON texts the ticket was stored as (see
/// [`encode_ticket`](super::encoding::encode_ticket)) rather than decoded and encoded
/// again: Lua's JSON library cannot tell an empty array from an empty object.
const REDEEM_TICKET: &str = concat!(
    lua_helpers!(),
    insert_session_fn!(),
    include_str!("lua/redeem_ticket.lua")
);

/// Returns a live session and restarts its idle timeout, in one step.
///
/// KEYS: session key, realm index. ARGV: user index base.
/// Reads the value; if present, restarts its expiry with the idle time stored inside it
/// and keeps both of its indexes alive at least as long. Returns the value or nil.
const TOUCH_SESSION: &str = concat!(lua_helpers!(), include_str!("lua/touch_session.lua"));

/// Ends one session and drops it from both indexes.
///
/// KEYS: session key, realm index. ARGV: user index base, session id.
/// Returns the removed value or nil.
const REMOVE_SESSION: &str = include_str!("lua/remove_session.lua");

/// Lists the live sessions an index names, oldest first, dropping the dead members.
///
/// KEYS: an index. ARGV: session key base, `1` to keep only the user key in ARGV[3]
/// (for a user's index) or `0` for any (for a realm's index), user key.
const LIST_SESSIONS: &str = include_str!("lua/list_sessions.lua");

/// Ends every live session of one user.
///
/// KEYS: user index, realm index. ARGV: session key base, user key.
/// Deletes each member's session if it still belongs to the user, drops the members from
/// the realm index (dead ones too), deletes the user's index, and returns the removed
/// values oldest first.
const REMOVE_USER_SESSIONS: &str = include_str!("lua/remove_user_sessions.lua");

/// Counts the live sessions an index names, dropping the dead members, without reading
/// any session (`EXISTS` only): what `/metrics` asks on every scrape.
///
/// KEYS: an index. ARGV: session key base.
const COUNT_SESSIONS: &str = include_str!("lua/count_sessions.lua");

/// The scripts, hashed once; `EVALSHA` loads them again after a server restart.
pub(super) struct Scripts {
    pub(super) insert_session: Script,
    pub(super) redeem_ticket: Script,
    pub(super) touch_session: Script,
    pub(super) remove_session: Script,
    pub(super) list_sessions: Script,
    pub(super) remove_user_sessions: Script,
    pub(super) count_sessions: Script,
}

impl Scripts {
    /// Every script's full source, for `SCRIPT LOAD` ahead of the first call.
    pub(super) const SOURCES: [&'static str; 7] = [
        INSERT_SESSION,
        REDEEM_TICKET,
        TOUCH_SESSION,
        REMOVE_SESSION,
        LIST_SESSIONS,
        REMOVE_USER_SESSIONS,
        COUNT_SESSIONS,
    ];

    pub(super) fn new() -> Self {
        Scripts {
            insert_session: Script::new(INSERT_SESSION),
            redeem_ticket: Script::new(REDEEM_TICKET),
            touch_session: Script::new(TOUCH_SESSION),
            remove_session: Script::new(REMOVE_SESSION),
            list_sessions: Script::new(LIST_SESSIONS),
            remove_user_sessions: Script::new(REMOVE_USER_SESSIONS),
            count_sessions: Script::new(COUNT_SESSIONS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_composed_as_before_the_split() {
        // The shared function and helpers are defined before the body that calls them.
        for body in [INSERT_SESSION, REDEEM_TICKET] {
            let helpers = body.find("local function extend").expect("helpers");
            let insert = body
                .find("local function insert_session")
                .expect("insert function");
            let call = body.rfind("insert_session(KEYS").expect("the call");
            assert!(helpers < insert && insert < call, "{body}");
        }
        assert!(TOUCH_SESSION.starts_with("local function int"));
        for standalone in [
            REMOVE_SESSION,
            LIST_SESSIONS,
            REMOVE_USER_SESSIONS,
            COUNT_SESSIONS,
        ] {
            assert!(!standalone.contains("local function"), "{standalone}");
        }
    }
}
