//! The Lua scripts of the Redis store: each operation is one round trip and one atomic step
//! on the server. `KEYS[1]` is always the cache's generation key; entry and lease keys are
//! built from it in the script (`<entries>..<generation>..':e:'..<key>`), and the other keys
//! of an entry (its version, its readers) are passed in whole, all under the cache's hash tag,
//! so they live in the generation key's slot on Redis Cluster too. An entry's value is its
//! stamp (8 bytes, little-endian: the hash of the value's encoding that the dependency graph
//! records) followed by the postcard encoding of `(key, value)`.

use std::sync::LazyLock;

/// `ARGV`: entries prefix, key, lease token, lease ms, `1` to take a lease, the entry's
/// version key (read only with a lease). Returns `{generation, 1, value[, version]}` (found),
/// `{generation, 2, '', version}` (leased), `{generation, 3, '', version}` (another holds the
/// lease) or `{generation, 0}` (missing, no lease asked).
pub(crate) static FETCH: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local g = redis.call('GET', KEYS[1]) or '0'
local v = redis.call('GET', ARGV[1] .. g .. ':e:' .. ARGV[2])
if ARGV[5] ~= '1' then
  if v then return {g, 1, v} end
  return {g, 0}
end
local version = redis.call('GET', ARGV[6]) or '0'
if v then return {g, 1, v, version} end
if redis.call('SET', ARGV[1] .. g .. ':l:' .. ARGV[2], ARGV[3], 'NX', 'PX', ARGV[4]) then
  return {g, 2, '', version}
end
return {g, 3, '', version}
",
    )
});

/// `ARGV`: entries prefix, key, expected generation (empty: the current one), value (stamp
/// first), expiry ms (`0`: none), lease token (empty: none), the cache's channel (empty:
/// none), the entry's version key, the expected version (empty: any), the entry's readers
/// key. Lets the lease go if it is still the token's; stores the value only in the expected
/// generation and version; tells the channel (an `insert`: other hosts' local copies may hold
/// the key). Readers recorded of another value (another stamp, or none stored any more) are
/// stale: their set is taken and returned for the caller to invalidate. Returns `{0}` (not
/// stored) or `{1, readers...}`.
pub(crate) static PUT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local g = redis.call('GET', KEYS[1]) or '0'
local lease = ARGV[1] .. ARGV[3] .. ':l:' .. ARGV[2]
if ARGV[6] ~= '' and redis.call('GET', lease) == ARGV[6] then redis.call('DEL', lease) end
if ARGV[3] ~= '' and ARGV[3] ~= g then return {0} end
if ARGV[9] ~= '' and (redis.call('GET', ARGV[8]) or '0') ~= ARGV[9] then return {0} end
local k = ARGV[1] .. g .. ':e:' .. ARGV[2]
local old = redis.call('GET', k)
if ARGV[5] ~= '0' then
  redis.call('SET', k, ARGV[4], 'PX', ARGV[5])
else
  redis.call('SET', k, ARGV[4])
end
if ARGV[7] ~= '' then redis.call('PUBLISH', ARGV[7], 'key') end
if old and string.sub(old, 1, 8) == string.sub(ARGV[4], 1, 8) then return {1} end
local readers = redis.call('SMEMBERS', ARGV[10])
if #readers == 0 then return {1} end
redis.call('DEL', ARGV[10])
table.insert(readers, 1, 1)
return readers
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
local removed = redis.call('DEL', ARGV[1] .. g .. ':e:' .. ARGV[2])
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

/// `KEYS[1]`: a cache's generation key; `ARGV`: its channel, its reader-caches key. Bumps
/// the generation, tells the subscribers, and takes and returns the caches recorded as
/// having read its entries (in one step: a reader recorded after it read the new
/// generation).
pub(crate) static INVALIDATE_TAKING_READERS: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local g = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], g)
local readers = redis.call('SMEMBERS', ARGV[2])
redis.call('DEL', ARGV[2])
return readers
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

/// `KEYS[1]`: the generation key of a cache an entry read; `ARGV`: that cache's entries
/// prefix, the key read, the stamp the reader saw (8 bytes), the read entry's readers key,
/// the reader (its entries prefix and key), the reader's expiry ms (`0`: none), the read
/// cache's reader-caches key, the reader's cache (its base). If the read entry is still
/// stored with that stamp, records the reader among its readers (a set that lives as long as
/// its longest-lived reader) and the reader's cache among the read cache's reader caches (a
/// set of at most as many caches as there are, taken by the next whole-cache invalidation)
/// and returns 1; else 0 (the reader is stale).
pub(crate) static RECORD_READ: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local g = redis.call('GET', KEYS[1]) or '0'
local v = redis.call('GET', ARGV[1] .. g .. ':e:' .. ARGV[2])
if not v or string.sub(v, 1, 8) ~= ARGV[3] then return 0 end
redis.call('SADD', ARGV[7], ARGV[8])
local existed = redis.call('EXISTS', ARGV[4])
redis.call('SADD', ARGV[4], ARGV[5])
if ARGV[6] == '0' then
  redis.call('PERSIST', ARGV[4])
elseif existed == 0 then
  redis.call('PEXPIRE', ARGV[4], ARGV[6])
else
  local left = redis.call('PTTL', ARGV[4])
  if left >= 0 and left < tonumber(ARGV[6]) then redis.call('PEXPIRE', ARGV[4], ARGV[6]) end
end
return 1
",
    )
});

/// `KEYS[1]`: the generation key of an entry's cache; `ARGV`: its entries prefix, the key,
/// the cache's channel, the entry's version key, its readers key, how long the version is
/// kept (ms). Moves the entry's version (a computation of it that started before does not
/// land), removes its value, takes its readers and tells the channel. Returns the readers.
pub(crate) static INVALIDATE_ENTRY: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
redis.call('INCR', ARGV[4])
redis.call('PEXPIRE', ARGV[4], ARGV[6])
local g = redis.call('GET', KEYS[1]) or '0'
redis.call('DEL', ARGV[1] .. g .. ':e:' .. ARGV[2])
local readers = redis.call('SMEMBERS', ARGV[5])
redis.call('DEL', ARGV[5])
redis.call('PUBLISH', ARGV[3], 'key')
return readers
",
    )
});
