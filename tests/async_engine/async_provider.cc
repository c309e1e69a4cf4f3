// ringlb_async_test: an OpenSSL 3 provider that behaves like a crypto accelerator with a
// queue, for tests and benchmarks only (never installed, never loaded by default).
//
// What it does: RSA and ECDSA signatures complete after RINGLB_TEST_ASYNC_DELAY_US
// microseconds (default 2000), computed on one helper thread by OpenSSL's default provider.
// Inside an OpenSSL async job (SSL_MODE_ASYNC) the signing call submits the work, registers
// an eventfd as the job's wait fd (ASYNC_WAIT_CTX_set_wait_fd) and pauses the job
// (ASYNC_pause_job); the helper signals the eventfd when the result is ready, like a
// hardware queue's completion interrupt, and the resumed job takes the result. Outside a
// job the caller itself sleeps the delay and signs, so synchronous use is bound by the serial
// latency. The helper runs requests in order of their due time, so any number can be in
// flight at once (an accelerator's queue depth); the signing itself is real.
//
// Why a provider and not a legacy ENGINE: in OpenSSL 3 keys read from PEM are
// provider-native, and libssl signs through EVP_DigestSign with provider-side signature
// implementations; ENGINE RSA/EC methods and EVP_PKEY_METHODs only apply to legacy keys.
// A provider's signature is fetched by name and property query, and the key is then exported
// to the keymgmt of the same provider. So this one offers:
//  - SIGNATURE "RSA" and "ECDSA", property "ringlb.async=yes";
//  - KEYMGMT "RSA" and "EC" that wrap a default-provider key (import = EVP_PKEY_fromdata with
//    "provider=default", export = EVP_PKEY_export), property "ringlb.wrapped=yes".
// Select it with the property query "?ringlb.async=yes,?ringlb.wrapped=no": signatures
// prefer this provider, every other fetch (key generation for ECDHE, decoders, ciphers) keeps
// the default provider's (an absent property matches "=no", see property(7)). Verification
// goes through here too (the query selects the signature by name) and is done at once.
//
// Loading: as a module next to the default provider, through ringlb's own configuration
//   [crypto] providers = ["default", "/path/to/ringlb_async_provider.so"]
//            property_query = "?ringlb.async=yes,?ringlb.wrapped=no"
//            async = true
// (tests/integration/test_async.py, bench/crypto), or an openssl.cnf (OPENSSL_CONF) with
//   [provider_sect] default = default_sect / ringlb_async_test = async_sect
//   [async_sect] module = /path/to/ringlb_async_provider.so, activate = 1
//   [algorithm_sect] default_properties = ?ringlb.async=yes,?ringlb.wrapped=no
// Loaded by path, OpenSSL names the provider by that path (ringlb's start-up report shows it).
#include <openssl/async.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kDefaultQuery = "provider=default";

std::chrono::microseconds configuredDelay() {
  const char* text = std::getenv("RINGLB_TEST_ASYNC_DELAY_US");
  long value = text != nullptr ? std::strtol(text, nullptr, 10) : 2000;
  return std::chrono::microseconds(value < 0 ? 0 : value);
}

// The eventfd of one ASYNC_WAIT_CTX (one SSL), shared with requests in flight: the wait
// context's cleanup may run (SSL_free) while the helper still holds a request, and the
// helper must never write to an fd number that was closed and reused.
struct Signal {
  int fd = -1;
  ~Signal() {
    if (fd >= 0) ::close(fd);
  }
};

struct Request {
  EVP_MD_CTX* md = nullptr;  // owned: a copy of the caller's context, finalised by the helper
  std::vector<unsigned char> sig;
  size_t siglen = 0;
  bool ok = false;
  std::atomic<bool> done{false};
  Clock::time_point due{};
  std::shared_ptr<Signal> signal;
  ~Request() { EVP_MD_CTX_free(md); }

  void run() {
    siglen = sig.size();
    ok = EVP_DigestSignFinal(md, sig.data(), &siglen) == 1;
  }
};

// The "accelerator": requests complete in due-time order on one thread.
class Helper {
 public:
  explicit Helper(std::chrono::microseconds delay) : delay_(delay), thread_([this] { loop(); }) {}
  ~Helper() { stop(); }

  // Idempotent. Runs from the destructor (provider teardown) or at exit, whichever is first.
  void stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    std::lock_guard lock(join_mu_);
    if (thread_.joinable()) thread_.join();
  }
  std::chrono::microseconds delay() const { return delay_; }

  void submit(std::shared_ptr<Request> request) {
    request->due = Clock::now() + delay_;
    {
      std::lock_guard lock(mu_);
      queue_.push(std::move(request));
    }
    cv_.notify_one();
  }

 private:
  struct Later {
    bool operator()(const std::shared_ptr<Request>& a, const std::shared_ptr<Request>& b) const {
      return a->due > b->due;
    }
  };

  void loop() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      if (queue_.empty()) {
        cv_.wait(lock);
        continue;
      }
      if (Clock::now() < queue_.top()->due) {
        cv_.wait_until(lock, queue_.top()->due);
        continue;
      }
      std::shared_ptr<Request> request = queue_.top();
      queue_.pop();
      lock.unlock();
      request->run();
      request->done.store(true, std::memory_order_release);
      uint64_t one = 1;
      [[maybe_unused]] ssize_t n = ::write(request->signal->fd, &one, sizeof(one));
      request.reset();
      lock.lock();
    }
    lock.unlock();
    OPENSSL_thread_stop();  // this thread's DRBGs and error queue
  }

  std::chrono::microseconds delay_;
  std::mutex mu_;
  std::mutex join_mu_;
  std::condition_variable cv_;
  std::priority_queue<std::shared_ptr<Request>, std::vector<std::shared_ptr<Request>>, Later> queue_;
  bool stop_ = false;
  std::thread thread_;
};

struct ProvCtx {
  Helper helper{configuredDelay()};
};

// The helper thread has per-thread OpenSSL state (DRBGs) that only OPENSSL_thread_stop()
// frees, while libcrypto is still intact. A provider still loaded at exit is torn down by
// OPENSSL_cleanup, after that state is gone, so the thread is also stopped by an atexit
// handler: registered after libcrypto's own, it runs before it. The module is linked with
// -z nodelete, so this code is still mapped at exit even if the provider was unloaded.
// Never destroyed: static destructors run before OPENSSL_cleanup's provider teardown.
struct LiveHelpers {
  std::mutex mu;
  std::vector<Helper*> helpers;
};
LiveHelpers& live() {
  static auto* instance = new LiveHelpers;
  return *instance;
}

void stopHelpersAtExit() {
  std::lock_guard lock(live().mu);
  for (Helper* helper : live().helpers) helper->stop();
}

ProvCtx* newProvCtx() {
  auto* ctx = new ProvCtx;
  std::lock_guard lock(live().mu);
  static const bool registered = std::atexit(stopHelpersAtExit) == 0;
  (void)registered;
  live().helpers.push_back(&ctx->helper);
  return ctx;
}

// ---- keymgmt: a default-provider EVP_PKEY behind this provider's keydata ----

struct WrappedKey {
  const char* type;  // "RSA" or "EC"
  EVP_PKEY* pkey = nullptr;
  int selection = 0;  // what was imported
};

template <const char* Type>
void* keyNew(void*) {
  return new WrappedKey{Type};
}

void keyFree(void* keydata) {
  auto* key = static_cast<WrappedKey*>(keydata);
  if (key == nullptr) return;
  EVP_PKEY_free(key->pkey);
  delete key;
}

int keyHas(const void* keydata, int selection) {
  const auto* key = static_cast<const WrappedKey*>(keydata);
  if (key == nullptr || key->pkey == nullptr) return 0;
  int wanted = selection & OSSL_KEYMGMT_SELECT_KEYPAIR;
  return (key->selection & wanted) == wanted;
}

int keyImport(void* keydata, int selection, const OSSL_PARAM params[]) {
  auto* key = static_cast<WrappedKey*>(keydata);
  int what = EVP_PKEY_KEY_PARAMETERS;
  if (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) {
    what = EVP_PKEY_KEYPAIR;
  } else if (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) {
    what = EVP_PKEY_PUBLIC_KEY;
  }
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, key->type, kDefaultQuery);
  EVP_PKEY* pkey = nullptr;
  int ok = ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1 &&
           EVP_PKEY_fromdata(ctx, &pkey, what, const_cast<OSSL_PARAM*>(params)) == 1;
  EVP_PKEY_CTX_free(ctx);
  if (!ok) return 0;
  EVP_PKEY_free(key->pkey);
  key->pkey = pkey;
  key->selection = what;
  return 1;
}

template <const char* Type>
const OSSL_PARAM* keyImportTypes(int selection) {
  // The default provider's own list (a static table, valid after the context is gone).
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, Type, kDefaultQuery);
  const OSSL_PARAM* types = ctx != nullptr ? EVP_PKEY_fromdata_settable(ctx, selection) : nullptr;
  EVP_PKEY_CTX_free(ctx);
  return types;
}

int keyExport(void* keydata, int selection, OSSL_CALLBACK* callback, void* arg) {
  auto* key = static_cast<WrappedKey*>(keydata);
  return key->pkey != nullptr && EVP_PKEY_export(key->pkey, selection, callback, arg) == 1;
}

int keyGetParams(void* keydata, OSSL_PARAM params[]) {
  auto* key = static_cast<WrappedKey*>(keydata);
  return key->pkey != nullptr && EVP_PKEY_get_params(key->pkey, params) == 1;
}

const OSSL_PARAM* keyGettableParams(void*) {
  static const OSSL_PARAM kParams[] = {
      OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, nullptr),
      OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, nullptr),
      OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, nullptr),
      OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, nullptr, 0),
      OSSL_PARAM_END};
  return kParams;
}

int keyMatch(const void* a, const void* b, int) {
  const auto* ka = static_cast<const WrappedKey*>(a);
  const auto* kb = static_cast<const WrappedKey*>(b);
  return ka->pkey != nullptr && kb->pkey != nullptr && EVP_PKEY_eq(ka->pkey, kb->pkey) == 1;
}

template <const char* SigName>
const char* keyOperationName(int operation) {
  return operation == OSSL_OP_SIGNATURE ? SigName : nullptr;
}

constexpr char kRsa[] = "RSA";
constexpr char kEc[] = "EC";
constexpr char kEcdsa[] = "ECDSA";

#define RINGLB_FN(id, fn) {id, reinterpret_cast<void (*)(void)>(fn)}

template <const char* Type, const char* SigName>
const OSSL_DISPATCH kKeymgmt[] = {
    RINGLB_FN(OSSL_FUNC_KEYMGMT_NEW, keyNew<Type>),
    RINGLB_FN(OSSL_FUNC_KEYMGMT_FREE, keyFree),
    RINGLB_FN(OSSL_FUNC_KEYMGMT_HAS, keyHas),
    RINGLB_FN(OSSL_FUNC_KEYMGMT_IMPORT, keyImport),
    RINGLB_FN(OSSL_FUNC_KEYMGMT_IMPORT_TYPES, keyImportTypes<Type>),
    RINGLB_FN(OSSL_FUNC_KEYMGMT_EXPORT, keyExport),
    RINGLB_FN(OSSL_FUNC_KEYMGMT_EXPORT_TYPES, keyImportTypes<Type>),
    RINGLB_FN(OSSL_FUNC_KEYMGMT_GET_PARAMS, keyGetParams),
    RINGLB_FN(OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, keyGettableParams),
    RINGLB_FN(OSSL_FUNC_KEYMGMT_MATCH, keyMatch),
    RINGLB_FN(OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, keyOperationName<SigName>),
    {0, nullptr}};

// ---- signature: digest-sign through the helper, digest-verify at once ----

struct SigCtx {
  ProvCtx* prov = nullptr;
  EVP_MD_CTX* md = nullptr;  // the default provider's digest-sign/verify context
};

void* sigNew(void* provctx, const char*) {
  auto* ctx = new SigCtx;
  ctx->prov = static_cast<ProvCtx*>(provctx);
  return ctx;
}

void sigFree(void* vctx) {
  auto* ctx = static_cast<SigCtx*>(vctx);
  EVP_MD_CTX_free(ctx->md);
  delete ctx;
}

void* sigDup(void* vctx) {
  auto* ctx = static_cast<SigCtx*>(vctx);
  auto* copy = new SigCtx;
  copy->prov = ctx->prov;
  if (ctx->md != nullptr) {
    copy->md = EVP_MD_CTX_new();
    if (copy->md == nullptr || EVP_MD_CTX_copy_ex(copy->md, ctx->md) != 1) {
      sigFree(copy);
      return nullptr;
    }
  }
  return copy;
}

int sigInit(void* vctx, const char* mdname, void* provkey, const OSSL_PARAM params[], bool sign) {
  auto* ctx = static_cast<SigCtx*>(vctx);
  auto* key = static_cast<WrappedKey*>(provkey);
  if (key == nullptr || key->pkey == nullptr) return 0;
  EVP_MD_CTX_free(ctx->md);
  ctx->md = EVP_MD_CTX_new();
  if (ctx->md == nullptr) return 0;
  return sign ? EVP_DigestSignInit_ex(ctx->md, nullptr, mdname, nullptr, kDefaultQuery, key->pkey, params)
              : EVP_DigestVerifyInit_ex(ctx->md, nullptr, mdname, nullptr, kDefaultQuery, key->pkey, params);
}

int signInit(void* ctx, const char* mdname, void* provkey, const OSSL_PARAM params[]) {
  return sigInit(ctx, mdname, provkey, params, true);
}

int verifyInit(void* ctx, const char* mdname, void* provkey, const OSSL_PARAM params[]) {
  return sigInit(ctx, mdname, provkey, params, false);
}

int signUpdate(void* vctx, const unsigned char* data, size_t len) {
  return EVP_DigestSignUpdate(static_cast<SigCtx*>(vctx)->md, data, len);
}

int verifyUpdate(void* vctx, const unsigned char* data, size_t len) {
  return EVP_DigestVerifyUpdate(static_cast<SigCtx*>(vctx)->md, data, len);
}

int verifyFinal(void* vctx, const unsigned char* sig, size_t siglen) {
  return EVP_DigestVerifyFinal(static_cast<SigCtx*>(vctx)->md, sig, siglen);
}

const char kWaitKey[] = "ringlb_async_test";

void cleanupSignal(ASYNC_WAIT_CTX*, const void*, OSSL_ASYNC_FD, void* custom) {
  delete static_cast<std::shared_ptr<Signal>*>(custom);
}

// The wait context's eventfd, made and registered on first use, kept for later jobs.
std::shared_ptr<Signal> signalFor(ASYNC_WAIT_CTX* wait) {
  OSSL_ASYNC_FD fd = -1;
  void* custom = nullptr;
  if (ASYNC_WAIT_CTX_get_fd(wait, kWaitKey, &fd, &custom) == 1) {
    return *static_cast<std::shared_ptr<Signal>*>(custom);
  }
  auto signal = std::make_shared<Signal>();
  signal->fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (signal->fd < 0) return nullptr;
  auto* holder = new std::shared_ptr<Signal>(signal);
  if (ASYNC_WAIT_CTX_set_wait_fd(wait, kWaitKey, signal->fd, holder, cleanupSignal) != 1) {
    delete holder;
    return nullptr;
  }
  return signal;
}

int signFinal(void* vctx, unsigned char* sig, size_t* siglen, size_t sigsize) {
  auto* ctx = static_cast<SigCtx*>(vctx);
  if (sig == nullptr) return EVP_DigestSignFinal(ctx->md, nullptr, siglen);
  auto request = std::make_shared<Request>();
  request->md = EVP_MD_CTX_new();
  if (request->md == nullptr || EVP_MD_CTX_copy_ex(request->md, ctx->md) != 1) return 0;
  request->sig.resize(sigsize);
  Helper& helper = ctx->prov->helper;
  ASYNC_JOB* job = ASYNC_get_current_job();
  std::shared_ptr<Signal> signal = job != nullptr ? signalFor(ASYNC_get_wait_ctx(job)) : nullptr;
  if (signal == nullptr) {
    // No job (or no way to signal one): the caller waits out the accelerator's latency.
    std::this_thread::sleep_for(helper.delay());
    request->run();
  } else {
    request->signal = signal;
    helper.submit(request);
    // Paused until the eventfd fires. A job may be resumed early (the application calls
    // SSL again for another reason): then the eventfd is not readable yet, pause again.
    uint64_t count = 0;
    do {
      if (ASYNC_pause_job() == 0) return 0;
    } while (::read(signal->fd, &count, sizeof(count)) != sizeof(count));
    while (!request->done.load(std::memory_order_acquire)) std::this_thread::yield();
  }
  if (!request->ok || request->siglen > sigsize) return 0;
  std::memcpy(sig, request->sig.data(), request->siglen);
  *siglen = request->siglen;
  return 1;
}

int sigSetParams(void* vctx, const OSSL_PARAM params[]) {
  auto* ctx = static_cast<SigCtx*>(vctx);
  if (params == nullptr || params[0].key == nullptr) return 1;
  EVP_PKEY_CTX* pctx = ctx->md != nullptr ? EVP_MD_CTX_get_pkey_ctx(ctx->md) : nullptr;
  return pctx != nullptr && EVP_PKEY_CTX_set_params(pctx, params) == 1;
}

int sigGetParams(void* vctx, OSSL_PARAM params[]) {
  auto* ctx = static_cast<SigCtx*>(vctx);
  EVP_PKEY_CTX* pctx = ctx->md != nullptr ? EVP_MD_CTX_get_pkey_ctx(ctx->md) : nullptr;
  return pctx != nullptr && EVP_PKEY_CTX_get_params(pctx, params) == 1;
}

// Names only: EVP checks set requests against these keys; values go to the default
// provider, which checks their types.
const OSSL_PARAM* sigSettableParams(void*, void*) {
  static const OSSL_PARAM kParams[] = {
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_PROPERTIES, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, nullptr, 0),
      OSSL_PARAM_size_t(OSSL_SIGNATURE_PARAM_KAT, nullptr),
      OSSL_PARAM_END};
  return kParams;
}

const OSSL_PARAM* sigGettableParams(void*, void*) {
  static const OSSL_PARAM kParams[] = {
      OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, nullptr, 0),
      OSSL_PARAM_END};
  return kParams;
}

const OSSL_DISPATCH kSignature[] = {
    RINGLB_FN(OSSL_FUNC_SIGNATURE_NEWCTX, sigNew),
    RINGLB_FN(OSSL_FUNC_SIGNATURE_FREECTX, sigFree),
    RINGLB_FN(OSSL_FUNC_SIGNATURE_DUPCTX, sigDup),
    RINGLB_FN(OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, signInit),
    RINGLB_FN(OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, signUpdate),
    RINGLB_FN(OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, signFinal),
    RINGLB_FN(OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, verifyInit),
    RINGLB_FN(OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE, verifyUpdate),
    RINGLB_FN(OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL, verifyFinal),
    RINGLB_FN(OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, sigSetParams),
    RINGLB_FN(OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, sigSettableParams),
    RINGLB_FN(OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, sigGetParams),
    RINGLB_FN(OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, sigGettableParams),
    {0, nullptr}};

const OSSL_ALGORITHM kKeymgmts[] = {
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", "provider=ringlb_async_test,ringlb.wrapped=yes",
     kKeymgmt<kRsa, kRsa>, "RSA keys wrapped for ringlb_async_test"},
    {"EC:id-ecPublicKey:1.2.840.10045.2.1", "provider=ringlb_async_test,ringlb.wrapped=yes",
     kKeymgmt<kEc, kEcdsa>, "EC keys wrapped for ringlb_async_test"},
    {nullptr, nullptr, nullptr, nullptr}};

const OSSL_ALGORITHM kSignatures[] = {
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", "provider=ringlb_async_test,ringlb.async=yes", kSignature,
     "RSA signatures after a simulated accelerator delay"},
    {"ECDSA", "provider=ringlb_async_test,ringlb.async=yes", kSignature,
     "ECDSA signatures after a simulated accelerator delay"},
    {nullptr, nullptr, nullptr, nullptr}};

const OSSL_ALGORITHM* queryOperation(void*, int operation_id, int* no_cache) {
  *no_cache = 0;
  switch (operation_id) {
    case OSSL_OP_KEYMGMT: return kKeymgmts;
    case OSSL_OP_SIGNATURE: return kSignatures;
    default: return nullptr;
  }
}

void teardown(void* provctx) {
  auto* ctx = static_cast<ProvCtx*>(provctx);
  {
    std::lock_guard lock(live().mu);
    std::erase(live().helpers, &ctx->helper);
  }
  delete ctx;
}

const OSSL_PARAM* gettableParams(void*) {
  static const OSSL_PARAM kParams[] = {OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, nullptr, 0), OSSL_PARAM_END};
  return kParams;
}

int getParams(void*, OSSL_PARAM params[]) {
  OSSL_PARAM* p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME);
  return p == nullptr || OSSL_PARAM_set_utf8_ptr(p, "ringlb simulated async accelerator (tests only)");
}

const OSSL_DISPATCH kProvider[] = {
    RINGLB_FN(OSSL_FUNC_PROVIDER_TEARDOWN, teardown),
    RINGLB_FN(OSSL_FUNC_PROVIDER_QUERY_OPERATION, queryOperation),
    RINGLB_FN(OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, gettableParams),
    RINGLB_FN(OSSL_FUNC_PROVIDER_GET_PARAMS, getParams),
    {0, nullptr}};

}  // namespace

extern "C" __attribute__((visibility("default"))) int OSSL_provider_init(const OSSL_CORE_HANDLE*,
                                                                         const OSSL_DISPATCH*,
                                                                         const OSSL_DISPATCH** out,
                                                                         void** provctx) {
  *provctx = newProvCtx();
  *out = kProvider;
  return 1;
}
