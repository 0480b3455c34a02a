//! The part of the Redis module API this module uses, with the signatures of Redis 7.0's
//! redismodule.h, fetched by name when the module loads (as the header's `RedisModule_Init`
//! does), and a safe layer over it: commands called with byte strings, their replies copied
//! into owned [`Reply`] values and freed at once; the command's own arguments passed on without
//! a copy; and the hashes the ingest call reads, read through the key API (`RedisModule_OpenKey`,
//! `HashGet`), which skips what `RedisModule_Call` costs around a command that reads (looking it
//! up, building its reply, parsing that back). Writes stay commands: replicating a key API write
//! (`RedisModule_Replicate`) costs more instructions than `RedisModule_Call` saves. A call makes
//! thousands of replies and strings, so nothing is left for `RedisModule_AutoMemory` to collect
//! at the end.

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
const KEYTYPE_EMPTY: c_int = 0;
const KEYTYPE_HASH: c_int = 3;
const HASH_NONE: c_int = 0;

/// The error a command answers for a key of another type, as Redis words it.
const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

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
}

impl Context {
    /// None before the module has loaded its API.
    ///
    /// # Safety
    /// `raw` is a context Redis passed to this module (to a command, or to OnLoad), and the
    /// `Context` is used only while that call runs.
    pub unsafe fn new(raw: *mut RedisModuleCtx) -> Option<Context> {
        API.get().map(|api| Context { raw, api })
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
        args: impl ExactSizeIterator<Item = Arg<'a>>,
    ) -> Result<Reply, String> {
        // '!' replicates; 'v' passes the arguments as one array and its length. RM_Call grows its
        // argument array by that length minus one, so no arguments go without 'v'.
        let format = match (replicate, args.len() == 0) {
            (false, true) => c"",
            (false, false) => c"v",
            (true, true) => c"!",
            (true, false) => c"!v",
        };
        let strings = self.strings(args);
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
        if let Some(errno) = failure {
            return Err(format!(
                "ERR {} could not run: {errno}",
                command.to_string_lossy()
            ));
        }
        // SAFETY: a reply RM_Call returned, read before it is freed, freed once (with the
        // elements of an array, which it owns).
        unsafe {
            let owned = self.owned(reply);
            (self.api.free_call_reply)(reply);
            owned
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
    fn strings<'a>(&self, args: impl ExactSizeIterator<Item = Arg<'a>>) -> Strings<'_> {
        let mut strings = Strings {
            raw: Vec::with_capacity(args.len()),
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

    /// Opens hash `name` for reading, as a command that reads looks it up: None when it does
    /// not exist, Redis' WRONGTYPE error when it is not a hash.
    fn open_hash(&self, name: &[u8]) -> Result<Option<Key<'_>>, String> {
        let name = self.strings([Arg::Bytes(name)].into_iter());
        // SAFETY: a live context and a live string (OpenKey takes its own reference to it).
        let raw = unsafe { (self.api.open_key)(self.raw, name.raw[0], REDISMODULE_READ) };
        if raw.is_null() {
            return Ok(None);
        }
        let key = Key { raw, context: self };
        // SAFETY: an open key.
        match unsafe { (self.api.key_type)(key.raw) } {
            KEYTYPE_EMPTY | KEYTYPE_HASH => Ok(Some(key)),
            _ => Err(WRONGTYPE.to_owned()),
        }
    }

    /// `HMGET key field…` through the key API: each field's value, None where it is absent.
    pub fn hash_get(&self, key: &[u8], fields: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, String> {
        let Some(key) = self.open_hash(key)? else {
            return Ok(vec![None; fields.len()]);
        };
        let fields = self.strings(fields.iter().map(|&field| Arg::Bytes(field)));
        let mut values = Vec::with_capacity(fields.raw.len());
        for &field in &fields.raw {
            let mut value: *mut RedisModuleString = ptr::null_mut();
            // SAFETY: an open hash, a live field, where to put its value, and the NULL that ends
            // HashGet's list. The value is Redis' new string (or NULL), copied and freed here.
            unsafe {
                (self.api.hash_get)(
                    key.raw,
                    HASH_NONE,
                    field,
                    &raw mut value,
                    ptr::null_mut::<c_void>(),
                );
                if value.is_null() {
                    values.push(None);
                } else {
                    let mut len = 0;
                    let text = (self.api.string_ptr_len)(value, &mut len);
                    values.push(Some(bytes(text, len).to_vec()));
                    (self.api.free_string)(self.raw, value);
                }
            }
        }
        Ok(values)
    }

    /// `HLEN key` through the key API.
    pub fn hash_len(&self, key: &[u8]) -> Result<usize, String> {
        let Some(key) = self.open_hash(key)? else {
            return Ok(0);
        };
        // SAFETY: an open key.
        Ok(unsafe { (self.api.value_length)(key.raw) })
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

impl Drop for Key<'_> {
    fn drop(&mut self) {
        // SAFETY: opened by `Context::open`, closed once.
        unsafe { (self.context.api.close_key)(self.raw) };
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
