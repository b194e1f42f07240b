// Library error codes to pg_datakey's exit statuses, one status per kind of failure.
#include "exit_status.hpp"

namespace pg_datakey {

ExitStatus exit_status_for(const fe_datakey::Error& error) {
    if (auto* tool = dynamic_cast<const ToolError*>(&error))
        return tool->status();
    using fe_datakey::ErrorCode;
    switch (error.code()) {
    case ErrorCode::ok:
        return exit_ok;
    case ErrorCode::usage:
    case ErrorCode::unsafe_path:
        return exit_usage;
    case ErrorCode::not_encrypted:
        return exit_not_encrypted;
    case ErrorCode::command_missing:
    case ErrorCode::command_empty:
    case ErrorCode::command_invalid:
        return exit_no_command;
    case ErrorCode::spawn_failed:
    case ErrorCode::command_failed:
    case ErrorCode::command_signaled:
    case ErrorCode::interrupted:
        return exit_command_failed;
    case ErrorCode::command_timeout:
        return exit_timeout;
    case ErrorCode::key_mismatch:
        return exit_wrong_key;
    case ErrorCode::output_empty:
    case ErrorCode::output_short:
    case ErrorCode::output_long:
        return exit_bad_length;
    case ErrorCode::check_invalid:
        return exit_check_invalid;
    case ErrorCode::io:
        return exit_io;
    case ErrorCode::internal:
        return exit_internal;
    }
    return exit_internal;
}

} // namespace pg_datakey
