#include "upstream/request_head.hpp"

#include <fmt/format.h>

#include <cctype>

#include "upstream/client.hpp"

namespace storecache::upstream {

namespace {

// Lower-cased tokens of the client's Connection field: the fields they name are hop-by-hop.
std::string connection_tokens(const header_list& headers) {
  std::string out = ",";
  for (const auto& h : headers)
    if (h.name == "connection") {
      for (char c : h.value)
        if (c != ' ' && c != '\t')
          out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out += ',';
    }
  return out;
}

bool named_in(const std::string& tokens, std::string_view name) {
  return tokens.size() > 1 && tokens.find(fmt::format(",{},", name)) != std::string::npos;
}

// Fields we set ourselves towards the origin; a client's values are never trusted.
bool replaced_by_us(std::string_view n) {
  return n == "host" || n == "x-forwarded-for" || n == "x-forwarded-proto" ||
         n == "x-forwarded-host" || n == "forwarded" || n == "x-real-ip" || n == "via" ||
         n == "content-length" || n == "expect";
}

}  // namespace

upstream_head build_upstream_head(const http::request_head& req, std::string_view method,
                                  std::string_view path, const std::string& host_header,
                                  bool for_fill, const header_list& extra) {
  upstream_head out;
  std::string& head = out.text;
  head.reserve(1024);
  fmt::format_to(std::back_inserter(head), "{} {} HTTP/1.1\r\nhost: {}\r\n", method, path,
                 host_header);
  const std::string tokens = connection_tokens(req.headers);
  std::string via;
  for (const auto& h : req.headers) {
    if (h.name == "via") via += h.value + ", ";
    if (is_hop_by_hop(h.name) || replaced_by_us(h.name) || named_in(tokens, h.name)) continue;
    // A fill fetches the whole object for everyone: not this client's range or validators.
    if (for_fill &&
        (h.name == "range" || h.name == "if-range" || h.name == "if-none-match" ||
         h.name == "if-modified-since" || h.name == "if-match" || h.name == "if-unmodified-since"))
      continue;
    fmt::format_to(std::back_inserter(head), "{}: {}\r\n", h.name, h.value);
  }
  for (const auto& h : extra)
    fmt::format_to(std::back_inserter(head), "{}: {}\r\n", h.name, h.value);
  const std::string ip = req.client_address.to_string();
  const bool v6 = req.client_address.is_v6();
  fmt::format_to(std::back_inserter(head),
                 "via: {}{} storecache\r\nx-forwarded-for: {}\r\nx-forwarded-proto: https\r\n"
                 "x-forwarded-host: {}\r\nforwarded: for={};host=\"{}\";proto=https\r\n",
                 via, req.proto == http::protocol::http2 ? "2" : "1.1", ip, req.authority,
                 v6 ? "\"[" + ip + "]\"" : ip, req.authority);
  if (!for_fill && req.has_body) {
    if (req.content_length)
      fmt::format_to(std::back_inserter(head), "content-length: {}\r\n", *req.content_length);
    else {
      head += "transfer-encoding: chunked\r\n";
      out.chunked = true;
    }
  } else if (method == "POST" || method == "PUT" || method == "PATCH") {
    head += "content-length: 0\r\n";
  }
  head += "\r\n";
  return out;
}

}  // namespace storecache::upstream
