#pragma once
namespace eat {
inline const char* version() { return EAT_VERSION; }
}  // namespace eat
