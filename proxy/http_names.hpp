// The protocol-neutral exchange (http/) by its short names, for the front end's code, which
// speaks little else: asio, error_code, the header list and the protocol.
#pragma once

#include "http/exchange.hpp"

namespace storecache::proxy {

namespace asio = boost::asio;
using boost::system::error_code;
using cache::find_header;
using cache::header;
using cache::header_list;
using http::protocol;

}  // namespace storecache::proxy
