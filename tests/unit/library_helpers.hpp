// Small helpers for tests of the library's C++ API.
#pragma once

#include "fe_datakey/error.hpp"
#include "fe_datakey/secure_buffer.hpp"

#include <functional>
#include <string>

// The error `f` throws, or an `ok` one when it throws none.
inline fe_datakey::Error error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const fe_datakey::Error& e) {
        return e;
    }
    return fe_datakey::Error(fe_datakey::ErrorCode::ok, "no error");
}

inline std::string text_of(const fe_datakey::SecureBuffer& b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}
