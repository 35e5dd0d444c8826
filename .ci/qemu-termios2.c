/*
 * An LD_PRELOAD shim for running smsgate's aarch64/armv7 build under qemu-user in CI (.ci/pi.sh).
 *
 * The serial-port crate configures a tty with the Linux termios2 ioctls (TCGETS2, TCSETS2,
 * TCSETSW2, TCSETSF2), which qemu-user does not translate (7.2 answers ENOSYS, 10.0 ENOTTY),
 * so under emulation no serial port, and so not the simulated modem's pty either, can be
 * opened. This shim turns those four requests into the classic TCGETS/TCSETS* that qemu-user
 * does translate; the baud rate travels in c_cflag instead of c_ispeed/c_ospeed, which a pty
 * ignores anyway. Every other ioctl goes to the C library untouched.
 *
 * It exists for the emulator only: on a Raspberry Pi the kernel handles termios2 itself, and
 * nothing here is installed or shipped.
 */
#define _GNU_SOURCE
#include <asm/ioctls.h>
#include <asm/termbits.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <string.h>

int ioctl(int fd, unsigned long request, ...);

static const struct {
    unsigned int rate;
    tcflag_t code;
} rates[] = {
    {9600, B9600},     {19200, B19200},   {38400, B38400},   {57600, B57600},
    {115200, B115200}, {230400, B230400}, {460800, B460800}, {921600, B921600},
};

static speed_t rate_of(tcflag_t cflag) {
    for (unsigned i = 0; i < sizeof rates / sizeof rates[0]; i++)
        if ((cflag & CBAUD) == rates[i].code)
            return rates[i].rate;
    return 38400;
}

static tcflag_t code_of(speed_t rate) {
    for (unsigned i = 0; i < sizeof rates / sizeof rates[0]; i++)
        if (rates[i].rate == rate)
            return rates[i].code;
    return B38400;
}

static int forward(int fd, unsigned long request, void *arg) {
    static int (*next)(int, unsigned long, ...);
    if (!next)
        next = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
    return next(fd, request, arg);
}

int ioctl(int fd, unsigned long request, ...) {
    va_list args;
    va_start(args, request);
    void *arg = va_arg(args, void *);
    va_end(args);

    struct termios2 *extended = arg;
    struct termios classic; /* the kernel's struct: termios2 without the two speeds */
    switch (request) {
    case TCGETS2:
        if (forward(fd, TCGETS, &classic) < 0)
            return -1;
        memcpy(extended, &classic, sizeof classic);
        extended->c_ispeed = extended->c_ospeed = rate_of(classic.c_cflag);
        return 0;
    case TCSETS2:
    case TCSETSW2:
    case TCSETSF2:
        memcpy(&classic, extended, sizeof classic);
        if ((classic.c_cflag & CBAUD) == BOTHER)
            classic.c_cflag = (classic.c_cflag & ~CBAUD) | code_of(extended->c_ospeed);
        return forward(fd,
                       request == TCSETS2    ? TCSETS
                       : request == TCSETSW2 ? TCSETSW
                                             : TCSETSF,
                       &classic);
    default:
        return forward(fd, request, arg);
    }
}
