// Requests a client abandoned before their response completed (HTTP/2: RST_STREAM from the
// peer; HTTP/1.1: the connection closed mid-response), as both front ends report them: the
// counter, the client ledger (access/client_ledger.hpp), and the one warning per penalty that
// names the address so store IT can find the device.
#pragma once

#include <chrono>

#include "proxy/connection_context.hpp"

namespace storecache::proxy {

// Notes one abandoned request of ctx's client at `now`. True when the client's address is over
// its budget (this reset pushed it over, or it is serving a penalty): HTTP/2 then ends the
// connection; HTTP/1.1 has nothing left to end.
bool note_client_reset(connection_context& ctx, http::protocol p,
                       std::chrono::steady_clock::time_point now);

}  // namespace storecache::proxy
