#pragma once
// Signals for the stream tools (ep-features, ep-score): SIGTERM and SIGINT ask the
// tool to stop reading after the current line and finish cleanly (write open windows,
// save state, flush Postgres); SIGHUP asks it to reload what it has cached (ep-score:
// models). The handlers only set flags; the tools poll them between lines, so a read
// blocked on a live upstream continues until its next line or EOF (LineReader retries
// EINTR).
#include <atomic>

namespace ep {

// Installs the SIGTERM/SIGINT handler, and the SIGHUP one when `hangup` is true.
void install_stop_signals(bool hangup = false);
// Set once SIGTERM or SIGINT arrived.
const std::atomic<bool>& stop_requested();
// True once per SIGHUP (clears it).
bool take_hangup();

}  // namespace ep
