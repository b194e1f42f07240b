// Memory for plaintext key material: locked where the OS allows, excluded
// from core dumps, zeroed in forked children, wiped with OPENSSL_cleanse when
// freed. Move-only so that a
// copy cannot be made by accident.
#pragma once

#include <cstddef>

namespace fe_datakey {

class SecureBuffer {
public:
    SecureBuffer() noexcept = default;
    explicit SecureBuffer(std::size_t capacity); // zero-filled, size() == 0
    ~SecureBuffer();

    SecureBuffer(const SecureBuffer&) = delete;
    SecureBuffer& operator=(const SecureBuffer&) = delete;
    SecureBuffer(SecureBuffer&& other) noexcept;
    SecureBuffer& operator=(SecureBuffer&& other) noexcept;

    unsigned char* data() noexcept { return data_; }
    const unsigned char* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return capacity_; }
    void resize(std::size_t n); // n <= capacity(); throws otherwise
    bool locked() const noexcept { return locked_; }
    // A fork()ed child sees the buffer zeroed (MADV_WIPEONFORK took effect).
    bool wiped_on_fork() const noexcept { return wipe_on_fork_; }

    // Constant-time comparison of contents.
    bool equals(const SecureBuffer& other) const noexcept;

private:
    void release() noexcept;

    unsigned char* data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
    std::size_t mapped_ = 0;
    bool locked_ = false;
    bool wipe_on_fork_ = false;
};

} // namespace fe_datakey
