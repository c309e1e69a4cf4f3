// The kTLS half of ProxyConnection: once both handshakes are done, hand each TLS socket's
// records to the kernel (tls/ktls_probe.h, tls/ktls_keys.h) and relay plaintext between the
// two sockets with the passthrough relay (buffers or splice), so that re-encryption between
// client and backend happens in the kernel and, with splice, never enters user space.
//
// Only when both sides can (tls/ktls_plan.h: client full kTLS, backend full kTLS or plain);
// otherwise, and always on a kernel without the TLS ULP, the user-space relay of tls_relay.cc
// runs as before. The switch, from openGate():
//  1. quiesce: cancel both recvs (a completion posted after the keys are installed would
//     hold plaintext, one posted before holds ciphertext: no read may straddle the switch)
//     and let the queued ciphertext (the handshake's last flight, TLS 1.3 tickets) go out;
//  2. drain: decrypt, with OpenSSL, what was received but not read yet (a request that came
//     with the client's Finished) into plaintext queued for the other side, up to a record
//     boundary (a partial record: read once more, single-shot, and drain again);
//  3. install: TCP_ULP "tls", TLS_TX and TLS_RX on each TLS socket with keys and sequence
//     numbers as OpenSSL left them; then the queued plaintext is sent (the kernel encrypts it).
// Not exchanged after the switch: alerts. A close_notify from a peer makes the kernel fail
// the read (EIO, no cmsg buffer is given), which ends the connection like a reset; ours is
// not sent (FIN only). A KeyUpdate from a peer does the same (kernels before 6.14 do not
// support TLS 1.3 rekeying in kTLS).
#include <cerrno>
#include <cstring>

#include "balancer/backend.h"
#include "balancer/proxy_connection.h"
#include "balancer/worker.h"
#include "core/log.h"

namespace ringlb::balancer {

bool ProxyConnection::ktlsWanted() const {
  return gen_->runtime().config.crypto.ktls != tls::KtlsMode::Off && tls::ktlsCaps().usable();
}

void ProxyConnection::trackKtls(int side) {
  if (ktlsWanted()) tls_[side].stream.trackKtls();
}

// Decides, and starts the switch when both sides qualify. False: the user-space relay runs.
bool ProxyConnection::planKtls() {
  const tls::KtlsCaps& caps = tls::ktlsCaps();
  tls::KtlsMode mode = gen_->runtime().config.crypto.ktls;
  for (int side = 0; side < 2; ++side) {
    if (!sideIsTls(side)) continue;
    SSL* ssl = tls_[side].stream.ssl();
    ktls_[side] = tls::ktlsPlan(mode, caps, static_cast<uint16_t>(SSL_version(ssl)), SSL_get_cipher_name(ssl),
                                side == 0 ? tls::KtlsSide::Client : tls::KtlsSide::Backend);
    if (ktls_[side].full()) {
      // Keys now (the sequence numbers are taken again after the drain): a failure here
      // leaves nothing changed.
      tls::KtlsKeys keys;
      std::string why = tls::extractKtlsKeys(ssl, tls_[side].stream.ktlsTrack(), true, keys);
      if (why.empty()) why = tls::extractKtlsKeys(ssl, tls_[side].stream.ktlsTrack(), false, keys);
      OPENSSL_cleanse(&keys, sizeof(keys));
      if (!why.empty()) {
        core::log().debug("{}", why);
        ktls_[side].tx = ktls_[side].rx = false;
        ktls_[side].why = tls::KtlsRefusal::Keys;
      }
    }
  }
  tls::ktlsRelayPlan(ktls_[0], sideIsTls(1) ? &ktls_[1] : nullptr);
  ktls_planned_ = true;
  if (!ktls_[0].full()) {
    if (mode != tls::KtlsMode::Off && core::log().should_log(spdlog::level::debug)) {
      core::log().debug("{} {}", peer().toString(), ktls_[0].describe(caps));
      if (sideIsTls(1)) core::log().debug("{} {}", peer().toString(), ktls_[1].describe(caps));
    }
    return false;
  }
  ktls_switching_ = true;
  cancelRecvForKtls(0);
  cancelRecvForKtls(1);
  tryFinishKtlsSwitch();
  return true;
}

void ProxyConnection::cancelRecvForKtls(int d) {
  Direction& dir = dirs_[d];
  if (!dir.recv_armed || dir.cancel_pending) return;
  dir.cancel_pending = true;
  worker_.loop().cancelOp(slot_, static_cast<uint8_t>(kCancelRecv0 + d), static_cast<uint8_t>(kRecv0 + d));
}

// Decrypts what `side`'s stream holds into plaintext for the other side.
ProxyConnection::Drain ProxyConnection::drainForKtls(int side) {
  TlsSide& t = tls_[side];
  Direction& dir = dirs_[side];
  core::EventLoop& loop = worker_.loop();
  if (!sideIsTls(side)) {  // a plain backend: `in` already holds plaintext (counted at receive)
    for (; !t.in.empty(); t.in.pop()) dir.queue.push(t.in.frontId(), t.in.frontLen());
    return Drain::Done;
  }
  SSL* ssl = t.stream.ssl();
  for (;;) {
    bool more = nextInput(side);
    int32_t id = loop.acquireBuffer();
    if (id < 0) return Drain::Failed;
    auto buffer = static_cast<uint16_t>(id);
    size_t n = 0;
    tls::TlsStatus status = t.stream.read(loop.buffer(buffer).data(), loop.bufferSize(), n);
    if (status == tls::TlsStatus::Ok) {
      dir.queue.push(buffer, static_cast<uint32_t>(n));
      dir.bytes += n;
      continue;
    }
    loop.releaseBuffer(buffer);
    if (status == tls::TlsStatus::Closed) return Drain::Done;  // dir.eof is set: propagated after
    if (status != tls::TlsStatus::WantRead) return Drain::Failed;
    if (more && nextInput(side)) continue;
    // Everything received is read: on a record boundary unless OpenSSL holds part of one.
    return SSL_has_pending(ssl) == 0 ? Drain::Done : Drain::NeedMore;
  }
}

void ProxyConnection::tryFinishKtlsSwitch() {
  if (!ktls_switching_ || !io_) return;
  for (const Direction& dir : dirs_) {
    if (dir.recv_armed || dir.cancel_pending) return;
    if (!ktls_draining_ && (dir.send_inflight || !dir.queue.empty())) return;
  }
  ktls_draining_ = true;  // from here the queues hold plaintext: nothing is sent until the keys are in
  for (int side = 0; side < 2; ++side) {
    Drain drain = drainForKtls(side);
    if (drain == Drain::Failed) {
      tlsFailed(side, "read");
      return;
    }
    if (drain == Drain::NeedMore) {
      Direction& dir = dirs_[side];
      dir.recv_armed = true;
      dir.multishot = false;  // exactly one more buffer of ciphertext, then drain again
      worker_.loop().recvProvided(slot_, static_cast<uint8_t>(kRecv0 + side), dir.from, false);
      return;
    }
  }
  if (!installKtls()) return;
  ktls_switching_ = ktls_draining_ = false;
  ktls_active_ = true;
  worker_.loop().timers().cancel(retry_timers_[0]);
  worker_.loop().timers().cancel(retry_timers_[1]);
  for (int d = 0; d < 2; ++d) {
    Direction& dir = dirs_[d];
    trySend(d);
    if (dir.eof && dir.queue.empty() && !dir.send_inflight) {
      propagateEof(d);
    } else {
      armRecv(d);
    }
    if (!io_) return;
  }
}

bool ProxyConnection::installKtls() {
  const int fds[2] = {client_fd_, backend_fd_};
  for (int side = 0; side < 2; ++side) {
    if (!sideIsTls(side)) continue;
    SSL* ssl = tls_[side].stream.ssl();
    const tls::KtlsTrack& track = tls_[side].stream.ktlsTrack();
    tls::KtlsKeys tx, rx;
    std::string why = tls::extractKtlsKeys(ssl, track, true, tx);
    if (why.empty()) why = tls::extractKtlsKeys(ssl, track, false, rx);
    int err = 0;
    const char* step = "keys";
    if (why.empty()) {
      step = "setsockopt(TCP_ULP, \"tls\")";
      err = tls::attachKtlsUlp(fds[side]);  // the ULP alone changes nothing (TLS_BASE: plain TCP)
      if (err == 0) {
        step = "setsockopt(SOL_TLS, TLS_TX)";
        err = tls::installKtls(fds[side], true, tx.cryptoInfo());
      }
      if (err == 0) {
        step = "setsockopt(SOL_TLS, TLS_RX)";
        err = tls::installKtls(fds[side], false, rx.cryptoInfo());
      }
    }
    OPENSSL_cleanse(&tx, sizeof(tx));
    OPENSSL_cleanse(&rx, sizeof(rx));
    if (why.empty() && err == 0) continue;
    // Plaintext is queued already and a socket may encrypt already: OpenSSL cannot take over.
    core::log().error("{} kTLS switch failed on the {} side: {}", peer().toString(), side == 0 ? "client" : "backend",
                      !why.empty() ? why : std::string(step) + ": " + std::strerror(err));
    ktls_[side].tx = ktls_[side].rx = false;
    ktls_[side].why = tls::KtlsRefusal::Install;
    end_errno_ = err;
    finish(EndReason::InternalError);
    return false;
  }
  return true;
}

}  // namespace ringlb::balancer
