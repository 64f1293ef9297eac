#pragma once

#include <occams_rpc/naming/endpoint_text.hpp>

#include <algorithm>
#include <charconv>
#include <tuple>

namespace occams_rpc::naming {

OCCAMS_RPC_DECL std::vector<endpoint> parse_endpoint_lines(std::string_view text, std::vector<std::string>& problems) {
  std::vector<endpoint> out;
  std::size_t number = 0;
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!text.empty()) {
    ++number;
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    // Split into words.
    std::vector<std::string_view> words;
    std::size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && is_space(line[i])) ++i;
      std::size_t start = i;
      while (i < line.size() && !is_space(line[i])) ++i;
      if (i > start) words.push_back(line.substr(start, i - start));
    }
    if (words.empty()) continue;
    auto skip = [&](std::string reason) { problems.push_back("line " + std::to_string(number) + ": " + reason); };
    if (words.size() > 2) {
      skip("expected ADDRESS [WEIGHT]");
      continue;
    }
    endpoint ep;
    if (parse_address(words[0], ep.where)) {
      skip("bad address '" + std::string(words[0]) + "'");
      continue;
    }
    if (words.size() == 2) {
      std::uint64_t w = 0;
      auto [end, ec] = std::from_chars(words[1].data(), words[1].data() + words[1].size(), w);
      if (ec != std::errc{} || end != words[1].data() + words[1].size() || w > max_weight) {
        skip("bad weight '" + std::string(words[1]) + "' (0.." + std::to_string(max_weight) + ")");
        continue;
      }
      ep.weight = w == 0 ? 1 : static_cast<std::uint32_t>(w);
    }
    out.push_back(std::move(ep));
  }
  return out;
}

OCCAMS_RPC_DECL std::size_t normalize_snapshot(std::vector<endpoint>& eps, std::size_t max) {
  auto key = [](const endpoint& e) { return std::tie(e.where.type, e.where.host, e.where.port, e.where.path); };
  // Stable: of two equal addresses, the first given stays first, and unique keeps it.
  std::stable_sort(eps.begin(), eps.end(), [&](const endpoint& a, const endpoint& b) { return key(a) < key(b); });
  eps.erase(std::unique(eps.begin(), eps.end(), [](const endpoint& a, const endpoint& b) { return a.where == b.where; }),
            eps.end());
  for (auto& e : eps)
    if (e.weight == 0) e.weight = 1;
  std::size_t dropped = eps.size() > max ? eps.size() - max : 0;
  eps.resize(eps.size() - dropped);
  return dropped;
}

}  // namespace occams_rpc::naming
