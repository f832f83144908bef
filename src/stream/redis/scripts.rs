//! The Lua scripts that make each shared step atomic in Redis, and the
//! names of the keys they work on.
//!
//! A chat's lease holds `<replica>|<stream>|<user>`. A reply's text is the
//! stream `rp:reply:<stream>` whose entry ids are byte offsets (`<offset>-1`,
//! field `t`); its last entry (field `o`, the outcome) ends it, and
//! `rp:reply:<stream>:end` marks it ended even where the stream was lost.

use redis::Script;

pub fn lease(chat_id: &str) -> String {
    format!("rp:chat:{chat_id}:lease")
}

pub fn watchers(chat_id: &str) -> String {
    format!("rp:chat:{chat_id}:watchers")
}

pub fn reply(stream_id: &str) -> String {
    format!("rp:reply:{stream_id}")
}

pub fn reply_info(stream_id: &str) -> String {
    format!("rp:reply:{stream_id}:info")
}

pub fn reply_end(stream_id: &str) -> String {
    format!("rp:reply:{stream_id}:end")
}

pub fn running(user_id: &str) -> String {
    format!("rp:user:{user_id}:running")
}

pub fn user_rate(user_id: &str) -> String {
    format!("rp:rate:user:{user_id}")
}

pub fn chat_rate(chat_id: &str) -> String {
    format!("rp:rate:chat:{chat_id}")
}

/// Replies running anywhere, as `<chat>|<stream>`: what the sweep checks.
pub const LIVE: &str = "rp:live";
/// Replicas tell each other of new replies, cancels and history changes.
pub const EVENTS: &str = "rp:events";

/// How many bytes a reply stream holds (`have`), from its last entry; -1
/// once it ended. Shared by the scripts that append.
const STREAM_LENGTH: &str = r"
local function stream_length(key)
  local top = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  if not top[1] then return 0 end
  local fields = top[1][2]
  if fields[1] ~= 't' then return -1 end
  return tonumber(string.match(top[1][1], '^(%d+)')) + string.len(fields[2])
end
";

/// Whether the lease is still `holder`'s. A lease that vanished (Redis lost
/// its data, or it lapsed while nobody took the chat) is taken again,
/// unless the reply was ended by another replica meanwhile.
const HOLDS_LEASE: &str = r"
local function holds_lease(lease_key, end_key, holder, lease_ms)
  local lease = redis.call('GET', lease_key)
  if lease == holder then return true end
  if lease or redis.call('EXISTS', end_key) == 1 then return false end
  redis.call('SET', lease_key, holder, 'PX', lease_ms)
  return true
end
";

/// Starting a reply: the chat must be free, the user under their running
/// limit and both send allowances (GCRA) must allow it; then, all at once,
/// the lease is taken, the running reply counted and the allowances spent.
/// A refusal changes nothing.
///
/// KEYS: lease, running, live, user rate, chat rate.
/// ARGV: holder, lease ms, running max, live member, stream id,
/// user interval ms, user burst, chat interval ms, chat burst.
/// Returns {"ok"} or {refusal, detail}.
pub fn claim() -> Script {
    Script::new(
        r"
local lease = redis.call('GET', KEYS[1])
if lease then return {'busy', lease} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease_ms = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
if max > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= max then return {'running', ARGV[3]} end
end
local function gcra(key, interval, burst)
  if interval <= 0 then return nil, nil end
  local tat = tonumber(redis.call('GET', key) or '0')
  local new_tat = math.max(tat, now) + interval
  local over = new_tat - now - interval * burst
  if over > 0 then return over, nil end
  return nil, new_tat
end
local user_over, user_tat = gcra(KEYS[4], tonumber(ARGV[6]), tonumber(ARGV[7]))
if user_over then return {'user_rate', tostring(user_over)} end
local chat_over, chat_tat = gcra(KEYS[5], tonumber(ARGV[8]), tonumber(ARGV[9]))
if chat_over then return {'chat_rate', tostring(chat_over)} end
if user_tat then redis.call('SET', KEYS[4], user_tat, 'PX', user_tat - now + 1000) end
if chat_tat then redis.call('SET', KEYS[5], chat_tat, 'PX', chat_tat - now + 1000) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', lease_ms)
if max > 0 then
  redis.call('ZADD', KEYS[2], now + lease_ms, ARGV[5])
  redis.call('PEXPIRE', KEYS[2], lease_ms * 2)
end
redis.call('ZADD', KEYS[3], now, ARGV[4])
return {'ok'}
",
    )
}

/// Renewing a running reply's hold. KEYS: lease, end, running, live, info.
/// ARGV: holder, lease ms, stream id, live member, "1" once the reply's
/// details were stored.
/// Returns "ok", "restored" (the lease had vanished and was taken again,
/// or the details are missing: Redis lost its data, and the caller puts the
/// reply's details and text back) or "lost" (another replica took the chat).
pub fn renew() -> Script {
    Script::new(
        r"
local lease = redis.call('GET', KEYS[1])
local outcome = 'ok'
if lease ~= ARGV[1] then
  if lease or redis.call('EXISTS', KEYS[2]) == 1 then return 'lost' end
  outcome = 'restored'
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[2]) * 2)
redis.call('ZADD', KEYS[4], 'NX', now, ARGV[4])
if ARGV[5] == '1' and redis.call('EXISTS', KEYS[5]) == 0 then outcome = 'restored' end
return outcome
",
    )
}

/// Appending text at byte `from`. KEYS: reply, lease, end.
/// ARGV: holder, from, text, lease ms.
/// Returns the bytes the stream holds afterwards (the caller resends from
/// there when it is not `from + len`: a retry already written, or a stream
/// Redis lost), or -1 when the holder was fenced out or the reply ended.
pub fn append() -> Script {
    Script::new(&format!(
        "{STREAM_LENGTH}{HOLDS_LEASE}
if not holds_lease(KEYS[2], KEYS[3], ARGV[1], ARGV[4]) then return -1 end
local have = stream_length(KEYS[1])
local from = tonumber(ARGV[2])
if have ~= from then return have end
redis.call('XADD', KEYS[1], from .. '-1', 't', ARGV[3])
return from + string.len(ARGV[3])
"
    ))
}

/// Ending a reply: its last entry (the outcome), the end mark, and the
/// chat freed. KEYS: reply, lease, end, live, running, info.
/// ARGV: holder, length, outcome, keep ms, live member, stream id, lease ms.
/// Returns the length when ended, the bytes the stream holds when text is
/// missing (append it first), or -1 when fenced out.
pub fn finish() -> Script {
    Script::new(&format!(
        "{STREAM_LENGTH}{HOLDS_LEASE}
if not holds_lease(KEYS[2], KEYS[3], ARGV[1], ARGV[7]) then return -1 end
local have = stream_length(KEYS[1])
local length = tonumber(ARGV[2])
if have ~= length then return have end
redis.call('XADD', KEYS[1], length .. '-1', 'o', ARGV[3])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[6], ARGV[4])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[4], ARGV[5])
redis.call('ZREM', KEYS[5], ARGV[6])
return length
"
    ))
}

/// A sweep taking a reply whose replica stopped renewing. KEYS: lease,
/// end, live. ARGV: holder, lease ms, live member.
/// Returns 1 when this sweep took it; 0 when the reply is held or over
/// (an ended one leaves the live set).
pub fn sweep_claim() -> Script {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('ZREM', KEYS[3], ARGV[3])
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
",
    )
}

/// Freeing a lease only if it is still `holder`'s. KEYS: lease. ARGV: holder.
pub fn release() -> Script {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
}

/// Taking a chat's lease to change its history. KEYS: lease. ARGV: holder, ms.
/// Returns {"ok"} or {"busy", holder}.
pub fn hold_for_change() -> Script {
    Script::new(
        r"
local lease = redis.call('GET', KEYS[1])
if lease then return {'busy', lease} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {'ok'}
",
    )
}
