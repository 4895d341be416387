//! The Lua scripts of the Redis store: each operation is one round trip and one atomic step
//! on the server. `KEYS[1]` is always the cache's generation key; entry and lease keys are
//! built from it in the script (`<entries>..<generation>..':v:'..<key>`), all under the
//! cache's hash tag, so they live in the generation key's slot on Redis Cluster too.

use std::sync::LazyLock;

/// `ARGV`: entries prefix, key, lease token, lease ms, `1` to take a lease.
/// Returns `{generation, 1, value}` (found), `{generation, 2}` (leased), `{generation, 3}`
/// (another holds the lease) or `{generation, 0}` (missing, no lease asked).
pub(crate) static FETCH: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local g = redis.call('GET', KEYS[1]) or '0'
local v = redis.call('GET', ARGV[1] .. g .. ':v:' .. ARGV[2])
if v then return {g, 1, v} end
if ARGV[5] == '1' then
  if redis.call('SET', ARGV[1] .. g .. ':l:' .. ARGV[2], ARGV[3], 'NX', 'PX', ARGV[4]) then
    return {g, 2}
  end
  return {g, 3}
end
return {g, 0}
",
    )
});

/// `ARGV`: entries prefix, key, expected generation (empty: the current one), value, expiry
/// ms (`0`: none), lease token (empty: none), the cache's channel (empty: none). Stores the
/// value only in the expected generation, lets the lease go if it is still the token's, and
/// tells the channel (an `insert`: other hosts' local copies may hold the key). Returns 1 if
/// stored.
pub(crate) static PUT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local g = redis.call('GET', KEYS[1]) or '0'
local lease = ARGV[1] .. ARGV[3] .. ':l:' .. ARGV[2]
if ARGV[6] ~= '' and redis.call('GET', lease) == ARGV[6] then redis.call('DEL', lease) end
if ARGV[3] ~= '' and ARGV[3] ~= g then return 0 end
local k = ARGV[1] .. g .. ':v:' .. ARGV[2]
if ARGV[5] ~= '0' then
  redis.call('SET', k, ARGV[4], 'PX', ARGV[5])
else
  redis.call('SET', k, ARGV[4])
end
if ARGV[7] ~= '' then redis.call('PUBLISH', ARGV[7], 'key') end
return 1
",
    )
});

/// `ARGV`: entries prefix, key, generation, lease token. Lets the lease go if it is still
/// the token's.
pub(crate) static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local lease = ARGV[1] .. ARGV[3] .. ':l:' .. ARGV[2]
if redis.call('GET', lease) == ARGV[4] then return redis.call('DEL', lease) end
return 0
",
    )
});

/// `ARGV`: entries prefix, key, the cache's channel. Removes the key's value from the current
/// generation and tells the channel if there was one.
pub(crate) static REMOVE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local g = redis.call('GET', KEYS[1]) or '0'
local removed = redis.call('DEL', ARGV[1] .. g .. ':v:' .. ARGV[2])
if removed > 0 then redis.call('PUBLISH', ARGV[3], 'key') end
return removed
",
    )
});

/// `KEYS`: the generation keys of every cache invalidated together; `ARGV`: their
/// invalidation channels, in the same order. Bumps them all in one step and tells the
/// subscribers. Returns the first cache's new generation.
pub(crate) static INVALIDATE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local first = 0
for i, key in ipairs(KEYS) do
  local g = redis.call('INCR', key)
  if i == 1 then first = g end
  redis.call('PUBLISH', ARGV[i], g)
end
return first
",
    )
});

/// `KEYS[1]`: a lease key; `ARGV`: the holder's token, the lease's length in ms. Extends the
/// lease if the token still holds it. Returns 1 if renewed.
pub(crate) static RENEW: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
",
    )
});
