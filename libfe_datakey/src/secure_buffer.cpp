// Key memory in its own mapping: it can be locked and kept out of core dumps
// without touching the heap, and wiped before it is given back.
#include "fe_datakey/secure_buffer.hpp"

#include "fe_datakey/error.hpp"

#include <openssl/crypto.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <utility>

namespace fe_datakey {

namespace {

std::size_t page_rounded(std::size_t n) {
    long page = sysconf(_SC_PAGESIZE);
    std::size_t p = page > 0 ? static_cast<std::size_t>(page) : 4096;
    return (n + p - 1) / p * p;
}

} // namespace

SecureBuffer::SecureBuffer(std::size_t capacity) {
    if (capacity == 0)
        return;
    std::size_t length = page_rounded(capacity);
    void* p = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        throw Error(ErrorCode::internal, "out of memory",
                    "Could not map " + std::to_string(length) +
                        " bytes for key material: " + std::strerror(e) + ".");
    }
    data_ = static_cast<unsigned char*>(p);
    mapped_ = length;
    capacity_ = capacity;
    // Best effort: RLIMIT_MEMLOCK may be small, and an unlocked key still works.
    // The system call itself, because sanitizers replace mlock() with a no-op
    // that reports success, and locked() must tell the truth.
    locked_ = syscall(SYS_mlock, p, length) == 0;
#ifdef MADV_DONTDUMP
    (void)madvise(p, length, MADV_DONTDUMP);
#endif
    // A forked child (every backend of the postmaster, a command's shell
    // before exec) gets zeroed pages, not a copy of the key: mlock() is not
    // inherited, so a copy could be swapped out, and no child needs the key
    // until a cipher layer does. Linux 4.14 and later.
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif
    wipe_on_fork_ = madvise(p, length, MADV_WIPEONFORK) == 0;
}

SecureBuffer::~SecureBuffer() {
    release();
}

SecureBuffer::SecureBuffer(SecureBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)),
      capacity_(std::exchange(other.capacity_, 0)), mapped_(std::exchange(other.mapped_, 0)),
      locked_(std::exchange(other.locked_, false)),
      wipe_on_fork_(std::exchange(other.wipe_on_fork_, false)) {}

SecureBuffer& SecureBuffer::operator=(SecureBuffer&& other) noexcept {
    if (this != &other) {
        release();
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
        capacity_ = std::exchange(other.capacity_, 0);
        mapped_ = std::exchange(other.mapped_, 0);
        locked_ = std::exchange(other.locked_, false);
        wipe_on_fork_ = std::exchange(other.wipe_on_fork_, false);
    }
    return *this;
}

void SecureBuffer::resize(std::size_t n) {
    if (n > capacity_)
        throw Error(ErrorCode::internal, "secure buffer overflow",
                    "Requested " + std::to_string(n) + " bytes in a buffer of " +
                        std::to_string(capacity_) + ".");
    // Bytes beyond the new size are wiped, so the tail is always zero.
    if (n < size_)
        OPENSSL_cleanse(data_ + n, size_ - n);
    size_ = n;
}

bool SecureBuffer::equals(const SecureBuffer& other) const noexcept {
    // The lengths are not secret; the contents are.
    if (size_ != other.size_)
        return false;
    if (size_ == 0)
        return true;
    return CRYPTO_memcmp(data_, other.data_, size_) == 0;
}

void SecureBuffer::release() noexcept {
    if (data_ == nullptr)
        return;
    OPENSSL_cleanse(data_, mapped_);
    if (locked_)
        syscall(SYS_munlock, data_, mapped_);
    munmap(data_, mapped_);
    data_ = nullptr;
    size_ = capacity_ = mapped_ = 0;
    locked_ = wipe_on_fork_ = false;
}

} // namespace fe_datakey
