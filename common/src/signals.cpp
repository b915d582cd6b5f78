#include "ep/signals.h"

#include <signal.h>

namespace ep {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_hangup{false};

extern "C" void on_stop(int) { g_stop.store(true); }
extern "C" void on_hangup(int) { g_hangup.store(true); }

void install(int sig, void (*fn)(int)) {
  struct sigaction sa{};
  sa.sa_handler = fn;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, nullptr);
}

}  // namespace

void install_stop_signals(bool hangup) {
  install(SIGTERM, on_stop);
  install(SIGINT, on_stop);
  if (hangup) install(SIGHUP, on_hangup);
}

const std::atomic<bool>& stop_requested() { return g_stop; }

bool take_hangup() { return g_hangup.exchange(false); }

}  // namespace ep
