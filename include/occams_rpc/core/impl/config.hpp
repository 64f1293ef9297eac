#pragma once

#include <occams_rpc/core/config.hpp>
#include <occams_rpc/core/error.hpp>

#include <system_error>

namespace occams_rpc {

template <class Config>
void validate(const Config& cfg) {
  if (auto why = cfg.problem()) throw std::system_error(make_error_code(errc::invalid_config), *why);
}

}  // namespace occams_rpc
