//! The part of the Redis module API this module uses, with the signatures of Redis 7.0's
//! redismodule.h, fetched by name when the module loads (as the header's `RedisModule_Init`
//! does), and a safe layer over it: commands called with byte strings, their replies copied
//! into owned [`Reply`] values and freed at once; the command's own arguments passed on without
//! a copy; and the keys the ingest call reads and writes most, read and written through the key
//! API (`RedisModule_OpenKey`, `HashGet`, `HashSet`, `StreamAdd`, …), which skips what
//! `RedisModule_Call` costs around a command (a client, the command's lookup and statistics, its
//! reply built and parsed back). Key API writes reach the AOF and replicas only as the module
//! passes them on (`RedisModule_Replicate`), so each is passed on as the command it stands for,
//! when the server passes anything on at all. A call makes thousands of replies and strings, so
//! nothing is left for `RedisModule_AutoMemory` to collect at the end.

use std::cell::OnceCell;
use std::ffi::{CStr, CString, c_char, c_int, c_long, c_longlong, c_void};
use std::sync::OnceLock;
use std::{io, mem, ptr, slice};

pub const REDISMODULE_OK: c_int = 0;
pub const REDISMODULE_ERR: c_int = 1;
const REDISMODULE_APIVER_1: c_int = 1;

// Reply types (REDISMODULE_REPLY_*). Calls answer in RESP2 (no "3" in their format), which has
// no others.
const REPLY_STRING: c_int = 0;
const REPLY_ERROR: c_int = 1;
const REPLY_INTEGER: c_int = 2;
const REPLY_ARRAY: c_int = 3;
const REPLY_NULL: c_int = 4;

// Key API constants of redismodule.h.
const REDISMODULE_READ: c_int = 1 << 0;
const REDISMODULE_WRITE: c_int = 1 << 1;
const KEYTYPE_EMPTY: c_int = 0;
const KEYTYPE_STRING: c_int = 1;
const KEYTYPE_HASH: c_int = 3;
const KEYTYPE_ZSET: c_int = 5;
const KEYTYPE_STREAM: c_int = 7;
const HASH_NONE: c_int = 0;
/// REDISMODULE_HASH_DELETE: HashSet's value that deletes the field.
const HASH_DELETE: *mut RedisModuleString = ptr::without_provenance_mut(1);
const NO_EXPIRE: c_longlong = -1;
const ZADD_GT: c_int = 1 << 5;
const STREAM_ADD_AUTOID: c_int = 1 << 0;
const CTX_FLAGS_AOF: c_int = 1 << 6;

// Errors as Redis words them: a key of another type, a value or an argument that is no integer,
// an increment past the integers.
const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
const OVERFLOW: &str = "ERR increment or decrement would overflow";

/// Redis' context of a running command, or of the module's loading. Only ever behind a pointer.
#[repr(C)]
pub struct RedisModuleCtx {
    _opaque: [u8; 0],
}

/// A string Redis owns. Only ever behind a pointer.
#[repr(C)]
pub struct RedisModuleString {
    _opaque: [u8; 0],
}

/// A key opened through the key API. Only ever behind a pointer.
#[repr(C)]
pub struct RedisModuleKey {
    _opaque: [u8; 0],
}

/// What `RedisModule_GetServerInfo` answers. Only ever behind a pointer.
#[repr(C)]
pub struct RedisModuleServerInfoData {
    _opaque: [u8; 0],
}

/// A stream entry's id, as redismodule.h lays it out.
#[repr(C)]
struct StreamId {
    ms: u64,
    seq: u64,
}

/// The reply of a command called through `RedisModule_Call`. Only ever behind a pointer.
#[repr(C)]
pub struct RedisModuleCallReply {
    _opaque: [u8; 0],
}

/// A command's implementation, as Redis calls it: context, arguments (the name first), count.
pub type CommandFn =
    unsafe extern "C" fn(*mut RedisModuleCtx, *mut *mut RedisModuleString, c_int) -> c_int;

/// `RedisModule_GetApi`: stores the address of the API function `name` through `out`.
type GetApiFn = unsafe extern "C" fn(name: *const c_char, out: *mut c_void) -> c_int;

/// The API functions this module calls, each declared as redismodule.h (Redis 7.0) declares it.
struct Api {
    create_command: unsafe extern "C" fn(
        *mut RedisModuleCtx,
        *const c_char,
        CommandFn,
        *const c_char,
        c_int,
        c_int,
        c_int,
    ) -> c_int,
    set_module_attribs: unsafe extern "C" fn(*mut RedisModuleCtx, *const c_char, c_int, c_int),
    call: unsafe extern "C" fn(
        *mut RedisModuleCtx,
        *const c_char,
        *const c_char,
        ...
    ) -> *mut RedisModuleCallReply,
    call_reply_type: unsafe extern "C" fn(*mut RedisModuleCallReply) -> c_int,
    call_reply_integer: unsafe extern "C" fn(*mut RedisModuleCallReply) -> c_longlong,
    call_reply_string_ptr:
        unsafe extern "C" fn(*mut RedisModuleCallReply, *mut usize) -> *const c_char,
    call_reply_length: unsafe extern "C" fn(*mut RedisModuleCallReply) -> usize,
    call_reply_array_element:
        unsafe extern "C" fn(*mut RedisModuleCallReply, usize) -> *mut RedisModuleCallReply,
    free_call_reply: unsafe extern "C" fn(*mut RedisModuleCallReply),
    string_ptr_len: unsafe extern "C" fn(*const RedisModuleString, *mut usize) -> *const c_char,
    create_string:
        unsafe extern "C" fn(*mut RedisModuleCtx, *const c_char, usize) -> *mut RedisModuleString,
    free_string: unsafe extern "C" fn(*mut RedisModuleCtx, *mut RedisModuleString),
    reply_with_array: unsafe extern "C" fn(*mut RedisModuleCtx, c_long) -> c_int,
    reply_with_long_long: unsafe extern "C" fn(*mut RedisModuleCtx, c_longlong) -> c_int,
    reply_with_error: unsafe extern "C" fn(*mut RedisModuleCtx, *const c_char) -> c_int,
    wrong_arity: unsafe extern "C" fn(*mut RedisModuleCtx) -> c_int,
    open_key: unsafe extern "C" fn(
        *mut RedisModuleCtx,
        *mut RedisModuleString,
        c_int,
    ) -> *mut RedisModuleKey,
    close_key: unsafe extern "C" fn(*mut RedisModuleKey),
    key_type: unsafe extern "C" fn(*mut RedisModuleKey) -> c_int,
    value_length: unsafe extern "C" fn(*mut RedisModuleKey) -> usize,
    hash_get: unsafe extern "C" fn(*mut RedisModuleKey, c_int, ...) -> c_int,
    hash_set: unsafe extern "C" fn(*mut RedisModuleKey, c_int, ...) -> c_int,
    string_dma: unsafe extern "C" fn(*mut RedisModuleKey, *mut usize, c_int) -> *mut c_char,
    string_set: unsafe extern "C" fn(*mut RedisModuleKey, *mut RedisModuleString) -> c_int,
    delete_key: unsafe extern "C" fn(*mut RedisModuleKey) -> c_int,
    get_expire: unsafe extern "C" fn(*mut RedisModuleKey) -> c_longlong,
    get_abs_expire: unsafe extern "C" fn(*mut RedisModuleKey) -> c_longlong,
    set_abs_expire: unsafe extern "C" fn(*mut RedisModuleKey, c_longlong) -> c_int,
    stream_add: unsafe extern "C" fn(
        *mut RedisModuleKey,
        c_int,
        *mut StreamId,
        *mut *mut RedisModuleString,
        c_long,
    ) -> c_int,
    zset_add:
        unsafe extern "C" fn(*mut RedisModuleKey, f64, *mut RedisModuleString, *mut c_int) -> c_int,
    replicate:
        unsafe extern "C" fn(*mut RedisModuleCtx, *const c_char, *const c_char, ...) -> c_int,
    get_context_flags: unsafe extern "C" fn(*mut RedisModuleCtx) -> c_int,
    get_server_info:
        unsafe extern "C" fn(*mut RedisModuleCtx, *const c_char) -> *mut RedisModuleServerInfoData,
    server_info_get_field_unsigned:
        unsafe extern "C" fn(*mut RedisModuleServerInfoData, *const c_char, *mut c_int) -> u64,
    free_server_info: unsafe extern "C" fn(*mut RedisModuleCtx, *mut RedisModuleServerInfoData),
}

static API: OnceLock<Api> = OnceLock::new();

impl Api {
    /// Looks every function up by its full name, as redismodule.h's `REDISMODULE_GET_API` does;
    /// None if this Redis lacks one.
    ///
    /// # Safety
    /// `get_api` is Redis' `RedisModule_GetApi`.
    unsafe fn fetch(get_api: GetApiFn) -> Option<Api> {
        // SAFETY: each field's type is the one redismodule.h gives the function of that name.
        unsafe {
            Some(Api {
                create_command: function(get_api, c"RedisModule_CreateCommand")?,
                set_module_attribs: function(get_api, c"RedisModule_SetModuleAttribs")?,
                call: function(get_api, c"RedisModule_Call")?,
                call_reply_type: function(get_api, c"RedisModule_CallReplyType")?,
                call_reply_integer: function(get_api, c"RedisModule_CallReplyInteger")?,
                call_reply_string_ptr: function(get_api, c"RedisModule_CallReplyStringPtr")?,
                call_reply_length: function(get_api, c"RedisModule_CallReplyLength")?,
                call_reply_array_element: function(get_api, c"RedisModule_CallReplyArrayElement")?,
                free_call_reply: function(get_api, c"RedisModule_FreeCallReply")?,
                string_ptr_len: function(get_api, c"RedisModule_StringPtrLen")?,
                create_string: function(get_api, c"RedisModule_CreateString")?,
                free_string: function(get_api, c"RedisModule_FreeString")?,
                reply_with_array: function(get_api, c"RedisModule_ReplyWithArray")?,
                reply_with_long_long: function(get_api, c"RedisModule_ReplyWithLongLong")?,
                reply_with_error: function(get_api, c"RedisModule_ReplyWithError")?,
                wrong_arity: function(get_api, c"RedisModule_WrongArity")?,
                open_key: function(get_api, c"RedisModule_OpenKey")?,
                close_key: function(get_api, c"RedisModule_CloseKey")?,
                key_type: function(get_api, c"RedisModule_KeyType")?,
                value_length: function(get_api, c"RedisModule_ValueLength")?,
                hash_get: function(get_api, c"RedisModule_HashGet")?,
                hash_set: function(get_api, c"RedisModule_HashSet")?,
                string_dma: function(get_api, c"RedisModule_StringDMA")?,
                string_set: function(get_api, c"RedisModule_StringSet")?,
                delete_key: function(get_api, c"RedisModule_DeleteKey")?,
                get_expire: function(get_api, c"RedisModule_GetExpire")?,
                get_abs_expire: function(get_api, c"RedisModule_GetAbsExpire")?,
                set_abs_expire: function(get_api, c"RedisModule_SetAbsExpire")?,
                stream_add: function(get_api, c"RedisModule_StreamAdd")?,
                zset_add: function(get_api, c"RedisModule_ZsetAdd")?,
                replicate: function(get_api, c"RedisModule_Replicate")?,
                get_context_flags: function(get_api, c"RedisModule_GetContextFlags")?,
                get_server_info: function(get_api, c"RedisModule_GetServerInfo")?,
                server_info_get_field_unsigned: function(
                    get_api,
                    c"RedisModule_ServerInfoGetFieldUnsigned",
                )?,
                free_server_info: function(get_api, c"RedisModule_FreeServerInfo")?,
            })
        }
    }
}

/// The API function `name` as a pointer of type `F`; None if Redis has no function of that name.
///
/// # Safety
/// `get_api` is Redis' `RedisModule_GetApi`, and `F` the function pointer type of `name`.
unsafe fn function<F: Copy>(get_api: GetApiFn, name: &CStr) -> Option<F> {
    const { assert!(size_of::<F>() == size_of::<*mut c_void>()) };
    let mut address: *mut c_void = ptr::null_mut();
    // SAFETY: GetApi stores the function's address through its second argument.
    let status = unsafe { get_api(name.as_ptr(), (&raw mut address).cast()) };
    if status != REDISMODULE_OK || address.is_null() {
        return None;
    }
    // SAFETY: `address` is a function of type `F` (this function's contract), pointer-sized.
    Some(unsafe { mem::transmute_copy::<*mut c_void, F>(&address) })
}

/// What redismodule.h's `RedisModule_Init` does: fetches the API and names the module (version
/// 1, API version 1). Returns the loading context to register commands with; None if Redis
/// lacks a function this module needs.
///
/// # Safety
/// `ctx` is the context Redis passed to `RedisModule_OnLoad`, used only during that call.
pub unsafe fn init(ctx: *mut RedisModuleCtx, module_name: &CStr) -> Option<Context> {
    // SAFETY: a loading context starts with the address of RedisModule_GetApi, as
    // RedisModule_Init reads it (`((void**)ctx)[0]`).
    let get_api = unsafe { *ctx.cast::<Option<GetApiFn>>() }?;
    // SAFETY: `get_api` is RedisModule_GetApi.
    let api = unsafe { Api::fetch(get_api) }?;
    // Loaded again in the same process, the module finds the same functions: the first stay.
    let _ = API.set(api);
    // SAFETY: `ctx` is live during OnLoad, which is when this runs.
    let context = unsafe { Context::new(ctx) }?;
    // SAFETY: a loading context and a C string that outlives the call (Redis copies it).
    unsafe {
        (context.api.set_module_attribs)(ctx, module_name.as_ptr(), 1, REDISMODULE_APIVER_1);
    }
    Some(context)
}

/// A command's reply, copied out of Redis (RESP2). An error reply is not a value: the call that
/// got it fails with its message, as `redis.call` raises it in a script.
#[derive(Debug)]
pub enum Reply {
    Null,
    Integer(i64),
    /// A bulk or simple string.
    Bulk(Vec<u8>),
    Array(Vec<Reply>),
}

impl Reply {
    pub fn integer(self) -> Result<i64, String> {
        match self {
            Reply::Integer(value) => Ok(value),
            other => Err(unexpected(&other, "an integer")),
        }
    }

    pub fn bulk(self) -> Result<Vec<u8>, String> {
        match self {
            Reply::Bulk(bytes) => Ok(bytes),
            other => Err(unexpected(&other, "a string")),
        }
    }

    /// A string, or None for a null (a missing key or field).
    pub fn nullable_bulk(self) -> Result<Option<Vec<u8>>, String> {
        match self {
            Reply::Null => Ok(None),
            other => other.bulk().map(Some),
        }
    }

    pub fn array(self) -> Result<Vec<Reply>, String> {
        match self {
            Reply::Array(elements) => Ok(elements),
            other => Err(unexpected(&other, "an array")),
        }
    }
}

fn unexpected(reply: &Reply, expected: &str) -> String {
    format!("ERR expected {expected} from Redis, got {reply:?}")
}

/// A context Redis passed to this module, with the API: everything the module does through
/// Redis goes through here.
pub struct Context {
    raw: *mut RedisModuleCtx,
    api: &'static Api,
    /// Whether this server passes writes on (to an AOF or replicas), asked once per command.
    propagates: OnceCell<bool>,
}

impl Context {
    /// None before the module has loaded its API.
    ///
    /// # Safety
    /// `raw` is a context Redis passed to this module (to a command, or to OnLoad), and the
    /// `Context` is used only while that call runs.
    pub unsafe fn new(raw: *mut RedisModuleCtx) -> Option<Context> {
        API.get().map(|api| Context {
            raw,
            api,
            propagates: OnceCell::new(),
        })
    }

    /// Registers command `name`, run by `handler`, with Redis' command `flags`. It declares no key
    /// positions (first key, last key, step 0, 0, 0), as the command's keys follow a count.
    pub fn create_command(&self, name: &CStr, handler: CommandFn, flags: &CStr) -> bool {
        // SAFETY: a live context; C strings that outlive the call (Redis copies them).
        let status = unsafe {
            (self.api.create_command)(self.raw, name.as_ptr(), handler, flags.as_ptr(), 0, 0, 0)
        };
        status == REDISMODULE_OK
    }

    /// The running command's arguments, its name first: their bytes, and the strings Redis
    /// holds, which a command or a write can take without a copy.
    ///
    /// # Safety
    /// `argv` and `argc` are those Redis passed along with this context; the arguments are used
    /// only while the command runs.
    pub unsafe fn arguments<'a>(
        &self,
        argv: *mut *mut RedisModuleString,
        argc: c_int,
    ) -> Vec<RedisStr<'a>> {
        let count = usize::try_from(argc).unwrap_or(0);
        (0..count)
            .map(|i| {
                let mut len = 0;
                // SAFETY: `argv` holds `argc` live strings (this function's contract).
                unsafe {
                    let raw = *argv.add(i);
                    let text = (self.api.string_ptr_len)(raw, &mut len);
                    RedisStr {
                        raw,
                        bytes: bytes(text, len),
                    }
                }
            })
            .collect()
    }

    /// Calls a command that only reads.
    pub fn read(&self, command: &CStr, args: &[&[u8]]) -> Result<Reply, String> {
        self.call(command, false, args.iter().map(|&arg| Arg::Bytes(arg)))
    }

    /// Calls a command that writes, replicated to replicas and the AOF as a script's writes are.
    pub fn write(&self, command: &CStr, args: &[&[u8]]) -> Result<Reply, String> {
        self.call(command, true, args.iter().map(|&arg| Arg::Bytes(arg)))
    }

    /// [`Context::write`] with arguments that may be strings Redis holds already.
    pub fn write_args(&self, command: &CStr, args: &[Arg]) -> Result<Reply, String> {
        self.call(command, true, args.iter().copied())
    }

    fn call<'a>(
        &self,
        command: &CStr,
        replicate: bool,
        args: impl IntoIterator<Item = Arg<'a>>,
    ) -> Result<Reply, String> {
        let reply = self.call_raw(command, replicate, args)?;
        // SAFETY: a reply RM_Call returned, read before it is freed, freed once (with the
        // elements of an array, which it owns).
        unsafe {
            let owned = self.owned(reply);
            (self.api.free_call_reply)(reply);
            owned
        }
    }

    /// Calls a command that only reads and answers an array of strings (`HKEYS`), handing each
    /// element to `each` where it lies in the reply: a walk copies only what it keeps.
    pub fn read_each(
        &self,
        command: &CStr,
        args: &[&[u8]],
        mut each: impl FnMut(&[u8]),
    ) -> Result<(), String> {
        let reply = self.call_raw(command, false, args.iter().map(|&arg| Arg::Bytes(arg)))?;
        // SAFETY: a reply RM_Call returned and its elements, read before it is freed, freed once.
        unsafe {
            let walked = match (self.api.call_reply_type)(reply) {
                REPLY_ARRAY => (0..(self.api.call_reply_length)(reply)).try_for_each(|i| {
                    let element = (self.api.call_reply_array_element)(reply, i);
                    match (self.api.call_reply_type)(element) {
                        REPLY_STRING => {
                            each(self.reply_bytes(element));
                            Ok(())
                        }
                        _ => Err(format!("ERR expected strings from {command:?}")),
                    }
                }),
                _ => self
                    .owned(reply)
                    .and_then(|other| Err(unexpected(&other, "an array of strings"))),
            };
            (self.api.free_call_reply)(reply);
            walked
        }
    }

    /// Calls `command` through `RedisModule_Call`: its reply, to be freed, or Err when it could
    /// not run.
    fn call_raw<'a>(
        &self,
        command: &CStr,
        replicate: bool,
        args: impl IntoIterator<Item = Arg<'a>>,
    ) -> Result<*mut RedisModuleCallReply, String> {
        let strings = self.strings(args);
        // '!' replicates; 'v' passes the arguments as one array and its length. RM_Call grows its
        // argument array by that length minus one, so no arguments go without 'v'.
        let format = match (replicate, strings.raw.is_empty()) {
            (false, true) => c"",
            (false, false) => c"v",
            (true, true) => c"!",
            (true, false) => c"!v",
        };
        let raw = &strings.raw;
        // SAFETY: a live context, C strings, and for 'v' the strings' array and its length: RM_Call
        // takes its own references to the strings.
        let reply = unsafe {
            (self.api.call)(
                self.raw,
                command.as_ptr(),
                format.as_ptr(),
                raw.as_ptr(),
                raw.len(),
            )
        };
        // With no reply, errno tells why (EINVAL: wrong arity, ENOENT: no such command, EPERM:
        // a key of another cluster slot, …): read before anything can change it.
        let failure = reply.is_null().then(io::Error::last_os_error);
        drop(strings);
        match failure {
            Some(errno) => Err(format!(
                "ERR {} could not run: {errno}",
                command.to_string_lossy()
            )),
            None => Ok(reply),
        }
    }

    /// A copy of `reply`; Err with its message for an error reply.
    ///
    /// # Safety
    /// `reply` is a live reply of a call made through this context.
    unsafe fn owned(&self, reply: *mut RedisModuleCallReply) -> Result<Reply, String> {
        // SAFETY: `reply` is live (this function's contract), and so are its elements.
        unsafe {
            match (self.api.call_reply_type)(reply) {
                REPLY_STRING => Ok(Reply::Bulk(self.reply_bytes(reply).to_vec())),
                REPLY_ERROR => Err(String::from_utf8_lossy(self.reply_bytes(reply)).into_owned()),
                REPLY_INTEGER => Ok(Reply::Integer((self.api.call_reply_integer)(reply))),
                REPLY_ARRAY => {
                    let len = (self.api.call_reply_length)(reply);
                    let mut elements = Vec::with_capacity(len);
                    for i in 0..len {
                        elements.push(self.owned((self.api.call_reply_array_element)(reply, i))?);
                    }
                    Ok(Reply::Array(elements))
                }
                REPLY_NULL => Ok(Reply::Null),
                other => Err(format!("ERR unexpected reply type {other} from Redis")),
            }
        }
    }

    /// The text of a string or error reply (an error's without its leading '-').
    ///
    /// # Safety
    /// `reply` is live, and the slice is not used after it is freed.
    unsafe fn reply_bytes<'a>(&self, reply: *mut RedisModuleCallReply) -> &'a [u8] {
        let mut len = 0;
        // SAFETY: `reply` is live (this function's contract).
        unsafe {
            let text = (self.api.call_reply_string_ptr)(reply, &mut len);
            bytes(text, len)
        }
    }

    /// Strings for `args`: those Redis holds as they are, the others created.
    fn strings<'a>(&self, args: impl IntoIterator<Item = Arg<'a>>) -> Strings<'_> {
        let args = args.into_iter();
        let mut strings = Strings {
            raw: Vec::with_capacity(args.size_hint().0),
            created: Vec::new(),
            context: self,
        };
        for arg in args {
            match arg {
                Arg::Held(string) => strings.raw.push(string.raw),
                Arg::Bytes(bytes) => {
                    // SAFETY: a live context, and `bytes` readable for its length (Redis copies it).
                    let raw = unsafe {
                        (self.api.create_string)(self.raw, bytes.as_ptr().cast(), bytes.len())
                    };
                    strings.created.push(raw);
                    strings.raw.push(raw);
                }
            }
        }
        strings
    }

    /// Opens key `name` as a command looks it up, for reading or (with `REDISMODULE_WRITE`) for
    /// writing too: Redis' WRONGTYPE error when it holds another type than `kind` (any, for
    /// None). None when it does not exist and is opened for reading only.
    fn open(
        &self,
        name: *mut RedisModuleString,
        mode: c_int,
        kind: Option<c_int>,
    ) -> Result<Option<Key<'_>>, String> {
        // SAFETY: a live context and a live string (OpenKey takes its own reference to it).
        let raw = unsafe { (self.api.open_key)(self.raw, name, mode) };
        if raw.is_null() {
            return Ok(None);
        }
        let key = Key { raw, context: self };
        match (key.kind(), kind) {
            (KEYTYPE_EMPTY, _) | (_, None) => Ok(Some(key)),
            (found, Some(kind)) if found == kind => Ok(Some(key)),
            _ => Err(WRONGTYPE.to_owned()),
        }
    }

    /// Opens key `name` for writing (it may be empty).
    fn open_for_writing(
        &self,
        name: *mut RedisModuleString,
        kind: Option<c_int>,
    ) -> Result<Key<'_>, String> {
        let key = self.open(name, REDISMODULE_READ | REDISMODULE_WRITE, kind)?;
        key.ok_or_else(|| "ERR a key could not be opened for writing".to_owned())
    }

    /// Opens hash `name` (it may not exist yet) to be read and written through one lookup of the
    /// key: an entity's hash or a tier's is read, then incremented and written, by one event.
    pub fn open_hash(&self, name: Arg) -> Result<Hash<'_>, String> {
        let name = self.strings([name]);
        let key = self.open_for_writing(name.raw[0], Some(KEYTYPE_HASH))?;
        Ok(Hash { key, name })
    }

    // Writes through the key API. A command called through `RedisModule_Call` costs a fake
    // client, a command lookup, its statistics and a reply built in RESP and parsed back; the
    // key API writes the value and nothing else. Each write is passed on to the AOF and replicas
    // as the command it stands for, with absolute expiry times and the stream id it took, as
    // Redis passes on what a script wrote — or not at all when the server has neither.

    /// `SET key value GET` and, for `expire_at` (Unix ms), `PXAT expire_at` — except that a key
    /// that holds `value` already is left as it is, TTL and all. Answers the value it held.
    pub fn set_string_unless_held(
        &self,
        key: Arg,
        value: Arg,
        expire_at: Option<i64>,
    ) -> Result<Option<Vec<u8>>, String> {
        let strings = self.strings([key, value]);
        let opened = self.open_for_writing(strings.raw[0], Some(KEYTYPE_STRING))?;
        let previous = (opened.kind() != KEYTYPE_EMPTY).then(|| opened.string());
        if previous.as_deref() == Some(value.bytes()) {
            return Ok(previous);
        }
        opened.set_string(strings.raw[1], expire_at);
        match expire_at {
            Some(at) => {
                let at = at.to_string();
                self.propagate(c"SET", &strings.raw, &[b"PXAT", at.as_bytes()])?
            }
            None => self.propagate(c"SET", &strings.raw, &[])?,
        }
        Ok(previous)
    }

    /// `INCR key`. A TTL stays, as INCR leaves it.
    pub fn incr(&self, key: &[u8]) -> Result<(), String> {
        let name = self.strings([Arg::Bytes(key)]);
        let opened = self.open_for_writing(name.raw[0], Some(KEYTYPE_STRING))?;
        let current = if opened.kind() == KEYTYPE_EMPTY {
            0
        } else {
            string_to_ll(&opened.string()).ok_or(NOT_AN_INTEGER)?
        };
        let value = current.checked_add(1).ok_or(OVERFLOW)?.to_string();
        let value = self.strings([Arg::Bytes(value.as_bytes())]);
        // SAFETY: an open key.
        let expire_at = unsafe { (self.api.get_abs_expire)(opened.raw) };
        opened.set_string(value.raw[0], (expire_at != NO_EXPIRE).then_some(expire_at));
        self.propagate(c"INCR", &name.raw, &[])
    }

    /// `HSET key field value …` (`pairs` alternate fields and values).
    pub fn hash_set(&self, key: Arg, pairs: &[Arg]) -> Result<(), String> {
        self.open_hash(key)?.set(pairs)
    }

    /// `ZADD key GT score member`; `score_text` is `score` as the command would be given it.
    pub fn zset_add_gt(
        &self,
        key: &[u8],
        score: f64,
        score_text: &[u8],
        member: &[u8],
    ) -> Result<(), String> {
        let strings = self.strings([Arg::Bytes(key), Arg::Bytes(member)]);
        let opened = self.open_for_writing(strings.raw[0], Some(KEYTYPE_ZSET))?;
        let mut flags = ZADD_GT;
        // SAFETY: a sorted set open for writing, a live member (ZsetAdd copies it) and its flags.
        let status = unsafe { (self.api.zset_add)(opened.raw, score, strings.raw[1], &mut flags) };
        if status != REDISMODULE_OK {
            return Err("ERR value is not a valid float".to_owned());
        }
        self.propagate(c"ZADD", &strings.raw[..1], &[b"GT", score_text, member])
    }

    /// `XADD key * field value …` (`fields` alternate fields and values).
    pub fn stream_add(&self, key: Arg, fields: &[Arg]) -> Result<(), String> {
        let mut strings = self.strings(std::iter::once(key).chain(fields.iter().copied()));
        let opened = self.open_for_writing(strings.raw[0], Some(KEYTYPE_STREAM))?;
        let mut id = StreamId { ms: 0, seq: 0 };
        let pairs = (strings.raw.len() - 1) / 2;
        // SAFETY: a stream open for writing, where to put the new entry's id, and the live
        // fields and values (StreamAdd copies them), `pairs` of them.
        let status = unsafe {
            (self.api.stream_add)(
                opened.raw,
                STREAM_ADD_AUTOID,
                &mut id,
                strings.raw[1..].as_mut_ptr(),
                pairs as c_long,
            )
        };
        if status != REDISMODULE_OK {
            let errno = io::Error::last_os_error();
            return Err(format!("ERR XADD could not add to the stream: {errno}"));
        }
        if !self.propagates() {
            return Ok(());
        }
        // Passed on with the id it took: a replica, or an AOF loaded again, takes the same.
        let id = format!("{}-{}", id.ms, id.seq);
        let id = self.strings([Arg::Bytes(id.as_bytes())]);
        let args = [&strings.raw[..1], &id.raw[..], &strings.raw[1..]].concat();
        self.propagate(c"XADD", &args, &[])
    }

    /// `PEXPIREAT key at` (Unix ms): nothing for a key that does not exist.
    pub fn expire_at(&self, key: Arg, at: i64) -> Result<(), String> {
        let name = self.strings([key]);
        let opened = self.open_for_writing(name.raw[0], None)?;
        if opened.kind() == KEYTYPE_EMPTY {
            return Ok(());
        }
        // SAFETY: a key that exists, open for writing.
        unsafe { (self.api.set_abs_expire)(opened.raw, at) };
        self.propagate(c"PEXPIREAT", &name.raw, &[at.to_string().as_bytes()])
    }

    /// `DEL key`, passed on when there was one.
    pub fn delete(&self, key: &[u8]) -> Result<(), String> {
        let name = self.strings([Arg::Bytes(key)]);
        let opened = self.open_for_writing(name.raw[0], None)?;
        if opened.kind() == KEYTYPE_EMPTY {
            return Ok(());
        }
        // SAFETY: a key open for writing.
        unsafe { (self.api.delete_key)(opened.raw) };
        self.propagate(c"DEL", &name.raw, &[])
    }

    /// `DEL key` when the key exists and has no TTL (PTTL -1).
    pub fn delete_if_persistent(&self, key: &[u8]) -> Result<(), String> {
        let name = self.strings([Arg::Bytes(key)]);
        let opened = self.open_for_writing(name.raw[0], None)?;
        // SAFETY: a key open for writing.
        let persistent = opened.kind() != KEYTYPE_EMPTY
            && unsafe { (self.api.get_expire)(opened.raw) } == NO_EXPIRE;
        if !persistent {
            return Ok(());
        }
        // SAFETY: a key open for writing.
        unsafe { (self.api.delete_key)(opened.raw) };
        self.propagate(c"DEL", &name.raw, &[])
    }

    /// Whether key `name` exists (of any type).
    pub fn exists(&self, key: &[u8]) -> Result<bool, String> {
        let name = self.strings([Arg::Bytes(key)]);
        let opened = self.open(name.raw[0], REDISMODULE_READ, None)?;
        Ok(opened.is_some_and(|key| key.kind() != KEYTYPE_EMPTY))
    }

    /// Passes a write made through the key API on to the AOF and replicas as `command` with
    /// `args` and then `extra`, inside the MULTI/EXEC Redis wraps a command's writes in.
    fn propagate(
        &self,
        command: &CStr,
        args: &[*mut RedisModuleString],
        extra: &[&[u8]],
    ) -> Result<(), String> {
        if !self.propagates() {
            return Ok(());
        }
        let extra = self.strings(extra.iter().map(|&arg| Arg::Bytes(arg)));
        let args = [args, &extra.raw[..]].concat();
        // SAFETY: a live context, C strings, and for 'v' an array of live strings and its length
        // (Replicate takes its own references to them).
        let status = unsafe {
            (self.api.replicate)(
                self.raw,
                command.as_ptr(),
                c"v".as_ptr(),
                args.as_ptr(),
                args.len(),
            )
        };
        if status != REDISMODULE_OK {
            return Err(format!(
                "ERR {} could not be replicated",
                command.to_string_lossy()
            ));
        }
        Ok(())
    }

    /// Whether Redis passes writes on, as its `shouldPropagate` decides: to an AOF when it is
    /// on, to replicas when there are any or a replication backlog is kept for them. Asked once
    /// per command: a replica attaches, and an AOF starts, between commands.
    fn propagates(&self) -> bool {
        *self.propagates.get_or_init(|| {
            // SAFETY: a live context.
            if unsafe { (self.api.get_context_flags)(self.raw) } & CTX_FLAGS_AOF != 0 {
                return true;
            }
            // SAFETY: a live context; the section's fields read before it is freed, once.
            unsafe {
                let info = (self.api.get_server_info)(self.raw, c"replication".as_ptr());
                let field = |name: &CStr| {
                    (self.api.server_info_get_field_unsigned)(info, name.as_ptr(), ptr::null_mut())
                };
                let replicated =
                    field(c"repl_backlog_active") != 0 || field(c"connected_slaves") != 0;
                (self.api.free_server_info)(self.raw, info);
                replicated
            }
        })
    }

    /// Answers the command with an array of integers.
    pub fn reply_integers(&self, values: &[i64]) {
        // SAFETY: a live command context; the array's length is announced, then its elements.
        unsafe {
            (self.api.reply_with_array)(self.raw, values.len() as c_long);
            for &value in values {
                (self.api.reply_with_long_long)(self.raw, value);
            }
        }
    }

    /// Answers the command with an error; `message` starts with its code (`ERR`, `WRONGTYPE`, …).
    pub fn reply_error(&self, message: &str) {
        // A C string: a NUL inside would cut the message short.
        let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
        // SAFETY: a live command context and a C string (Redis copies it).
        unsafe { (self.api.reply_with_error)(self.raw, message.as_ptr()) };
    }

    /// Answers the command with Redis' wrong-number-of-arguments error.
    pub fn wrong_arity(&self) -> c_int {
        // SAFETY: a live command context.
        unsafe { (self.api.wrong_arity)(self.raw) }
    }
}

/// A string Redis holds, for as long as `'a`: one of the running command's arguments.
#[derive(Clone, Copy)]
pub struct RedisStr<'a> {
    raw: *mut RedisModuleString,
    bytes: &'a [u8],
}

impl<'a> RedisStr<'a> {
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// An argument of a command or a write: bytes (a string is created for them), or a string Redis
/// holds already (passed on as it is: an event's payload is not copied again).
#[derive(Clone, Copy)]
pub enum Arg<'a> {
    Bytes(&'a [u8]),
    Held(RedisStr<'a>),
}

impl<'a> Arg<'a> {
    pub fn bytes(&self) -> &'a [u8] {
        match *self {
            Arg::Bytes(bytes) => bytes,
            Arg::Held(string) => string.bytes(),
        }
    }
}

/// The strings of a command's arguments; those created for it are freed when it is dropped.
struct Strings<'c> {
    raw: Vec<*mut RedisModuleString>,
    created: Vec<*mut RedisModuleString>,
    context: &'c Context,
}

impl Drop for Strings<'_> {
    fn drop(&mut self) {
        for &string in &self.created {
            // SAFETY: created by `Context::strings`, freed once.
            unsafe { (self.context.api.free_string)(self.context.raw, string) };
        }
    }
}

/// An open key, closed when dropped.
struct Key<'c> {
    raw: *mut RedisModuleKey,
    context: &'c Context,
}

impl Key<'_> {
    /// Its type, `KEYTYPE_EMPTY` when it does not exist.
    fn kind(&self) -> c_int {
        // SAFETY: an open key.
        unsafe { (self.context.api.key_type)(self.raw) }
    }

    /// `HGET` of one field of a hash (or an empty key): None where it is absent.
    fn field(&self, field: *mut RedisModuleString) -> Option<Vec<u8>> {
        let mut value: *mut RedisModuleString = ptr::null_mut();
        // SAFETY: an open key, a live field, where to put its value, and the NULL that ends
        // HashGet's list. The value is Redis' new string (or NULL), copied and freed here.
        unsafe {
            (self.context.api.hash_get)(
                self.raw,
                HASH_NONE,
                field,
                &raw mut value,
                ptr::null_mut::<c_void>(),
            );
            if value.is_null() {
                return None;
            }
            let mut len = 0;
            let text = (self.context.api.string_ptr_len)(value, &mut len);
            let copy = bytes(text, len).to_vec();
            (self.context.api.free_string)(self.context.raw, value);
            Some(copy)
        }
    }

    /// `HSET` of one field, on a hash (or an empty key) open for writing; `value` may be
    /// `HASH_DELETE`. How many fields the hash held that it replaced or deleted.
    fn set_field(&self, field: *mut RedisModuleString, value: *mut RedisModuleString) -> c_int {
        // SAFETY: a key open for writing, a live field, a live value (HashSet copies both) or
        // the marker HashSet reads as "delete" (REDISMODULE_HASH_DELETE), and the NULL that
        // ends its list.
        unsafe {
            (self.context.api.hash_set)(
                self.raw,
                HASH_NONE,
                field,
                value,
                ptr::null_mut::<c_void>(),
            )
        }
    }

    /// Deletes `field` of a hash open for writing: whether it held it. The key goes with its last
    /// field.
    fn delete_field(&self, field: *mut RedisModuleString) -> bool {
        self.set_field(field, HASH_DELETE) == 1
    }

    /// `SET` of a key open for writing to `value`, with an expiry time (Unix ms) or none: any old
    /// value and TTL go.
    fn set_string(&self, value: *mut RedisModuleString, expire_at: Option<i64>) {
        // SAFETY: a key open for writing and a live string (StringSet takes a reference to it);
        // the key exists once set, which SetAbsExpire needs.
        unsafe {
            (self.context.api.string_set)(self.raw, value);
            if let Some(at) = expire_at {
                (self.context.api.set_abs_expire)(self.raw, at);
            }
        }
    }

    /// Its value as a string (wrong for any other type).
    fn string(&self) -> Vec<u8> {
        let mut len = 0;
        // SAFETY: an open key; the pointer is read at once, before anything writes.
        unsafe {
            let text = (self.context.api.string_dma)(self.raw, &mut len, REDISMODULE_READ);
            bytes(text, len).to_vec()
        }
    }
}

impl Drop for Key<'_> {
    fn drop(&mut self) {
        // SAFETY: opened by `Context::open`, closed once.
        unsafe { (self.context.api.close_key)(self.raw) };
    }
}

/// A hash open for writing (it may not exist yet): read, incremented and written through the
/// one lookup that opened it, each write passed on as the command it stands for. Nothing else
/// may delete the key while it is open (its handle would point at a freed value).
pub struct Hash<'c> {
    key: Key<'c>,
    /// The key's name, for what is passed on.
    name: Strings<'c>,
}

impl Hash<'_> {
    /// `HMGET key field…`: each field's value, None where it is absent.
    pub fn get(&self, fields: &[&[u8]]) -> Vec<Option<Vec<u8>>> {
        if self.key.kind() == KEYTYPE_EMPTY {
            return vec![None; fields.len()];
        }
        let fields = self
            .key
            .context
            .strings(fields.iter().map(|&field| Arg::Bytes(field)));
        fields
            .raw
            .iter()
            .map(|&field| self.key.field(field))
            .collect()
    }

    /// `HLEN key`.
    pub fn len(&self) -> usize {
        // SAFETY: an open key (ValueLength answers 0 for an empty one).
        unsafe { (self.key.context.api.value_length)(self.key.raw) }
    }

    /// `HSET key field value …` (`pairs` alternate fields and values).
    pub fn set(&self, pairs: &[Arg]) -> Result<(), String> {
        let context = self.key.context;
        let strings = context.strings(pairs.iter().copied());
        let pairs: Vec<&[Arg]> = pairs.chunks_exact(2).collect();
        // HSET turns a listpack that is to take a value too long for one into a hash table
        // before inserting anything; HashSet only on meeting that value, once the pairs before
        // it went into the listpack. So the longest value goes first — unless its field comes
        // twice, where the order decides which value stays.
        let longest = (0..pairs.len()).max_by_key(|&i| pairs[i][1].bytes().len());
        let first = longest.filter(|&i| {
            let field = pairs[i][0].bytes();
            pairs.iter().filter(|pair| pair[0].bytes() == field).count() == 1
        });
        let order = first
            .into_iter()
            .chain((0..pairs.len()).filter(|&i| Some(i) != first));
        for i in order {
            self.key
                .set_field(strings.raw[2 * i], strings.raw[2 * i + 1]);
        }
        context.propagate(
            c"HSET",
            &[&self.name.raw[..], &strings.raw[..]].concat(),
            &[],
        )
    }

    /// `HINCRBY key field by`, with HINCRBY's errors.
    pub fn incr_by(&self, field: &[u8], by: &[u8]) -> Result<(), String> {
        let context = self.key.context;
        let increment = string_to_ll(by).ok_or(NOT_AN_INTEGER)?;
        let strings = context.strings([Arg::Bytes(field), Arg::Bytes(by)]);
        let current = match self.key.field(strings.raw[0]) {
            None => 0,
            Some(text) => string_to_ll(&text).ok_or("ERR hash value is not an integer")?,
        };
        let value = current.checked_add(increment).ok_or(OVERFLOW)?.to_string();
        let value = context.strings([Arg::Bytes(value.as_bytes())]);
        self.key.set_field(strings.raw[0], value.raw[0]);
        context.propagate(
            c"HINCRBY",
            &[&self.name.raw[..], &strings.raw[..]].concat(),
            &[],
        )
    }

    /// `HDEL key field…`, passed on with only the fields the hash held. The key goes with its last
    /// field.
    pub fn delete(&self, fields: &[Vec<u8>]) -> Result<(), String> {
        let context = self.key.context;
        let strings = context.strings(fields.iter().map(|field| Arg::Bytes(field)));
        let mut deleted = vec![self.name.raw[0]];
        for &field in &strings.raw {
            if self.key.kind() == KEYTYPE_EMPTY {
                break;
            }
            if self.key.delete_field(field) {
                deleted.push(field);
            }
        }
        if deleted.len() == 1 {
            return Ok(());
        }
        context.propagate(c"HDEL", &deleted, &[])
    }
}

/// The bytes at `text`; none for a null pointer.
///
/// # Safety
/// `text` is null or points to `len` bytes that stay readable and unchanged for `'a`.
unsafe fn bytes<'a>(text: *const c_char, len: usize) -> &'a [u8] {
    if text.is_null() {
        &[]
    } else {
        // SAFETY: per this function's contract.
        unsafe { slice::from_raw_parts(text.cast(), len) }
    }
}

/// Redis' `string2ll`: a decimal integer as Redis writes one (an optional minus, no leading zeros
/// or plus, no spaces) that fits a long long; None otherwise.
fn string_to_ll(text: &[u8]) -> Option<i64> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    let canonical = match digits {
        [b'0'] => digits.len() == text.len(),
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !canonical {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_read_as_redis_reads_them() {
        for (text, value) in [
            ("0", Some(0)),
            ("42", Some(42)),
            ("-7", Some(-7)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("-0", None),
            ("007", None),
            ("+1", None),
            (" 1", None),
            ("1.5", None),
            ("1e3", None),
            ("", None),
            ("-", None),
        ] {
            assert_eq!(string_to_ll(text.as_bytes()), value, "{text:?}");
        }
    }
}
