/*
 * server_datakey.c
 *	  The server's adapter to libfe_datakey: unwrap and verify the data
 *	  encryption key at start-up and keep it.
 */
#include "server_datakey.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static fe_datakey_key *loaded_key;

/* The process that loaded it: a forked child sees its memory zeroed. */
static pid_t loaded_by;

/* Whether this process can reach a terminal for a command to prompt on. */
static int
have_terminal(void)
{
	int			fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

/* Errors of a command that ran and did not give a key. */
static int
is_command_failure(int code)
{
	switch (code)
	{
		case FE_DATAKEY_E_COMMAND_FAILED:
		case FE_DATAKEY_E_COMMAND_SIGNALED:
		case FE_DATAKEY_E_COMMAND_TIMEOUT:
		case FE_DATAKEY_E_OUTPUT_EMPTY:
			return 1;
		default:
			return 0;
	}
}

/*
 * Without a terminal, a command that prompts for a passphrase fails in ways
 * that say little (openssl: "bad password read"): say why in the hint.
 */
static void
add_terminal_hint(fe_datakey_error **err)
{
	static const char no_tty[] =
		"The server has no controlling terminal, as when it is started by pg_ctl or a "
		"service manager such as systemd: a key unwrap command that prompts for a "
		"passphrase cannot work there. Give the passphrase another way (for example "
		"openssl's -pass file:PATH, or systemd-ask-password), or start the server in "
		"the foreground from a terminal.";
	const char *hint;
	char	   *combined;
	size_t		len;
	fe_datakey_error *replaced;

	if (err == NULL || *err == NULL ||
		!is_command_failure(fe_datakey_error_code(*err)) || have_terminal())
		return;
	hint = fe_datakey_error_hint(*err);
	len = (hint != NULL ? strlen(hint) + 1 : 0) + sizeof(no_tty);
	combined = malloc(len);
	if (combined == NULL)
		return;
	snprintf(combined, len, "%s%s%s", hint != NULL ? hint : "",
			 hint != NULL ? " " : "", no_tty);
	replaced = fe_datakey_error_new(fe_datakey_error_code(*err),
									fe_datakey_error_message(*err),
									fe_datakey_error_detail(*err), combined);
	free(combined);
	if (replaced != NULL)
	{
		fe_datakey_error_free(*err);
		*err = replaced;
	}
}

/* Overwrites n bytes in a way the compiler may not drop. */
static void
wipe(char *p, size_t n)
{
	volatile char *v = p;

	while (n-- > 0)
		*v++ = 0;
}

/*
 * The process's environment as the kernel handed it over (what
 * /proc/PID/environ shows), from /proc/self/stat's env_start and env_end.
 * The server's process title code moves environ elsewhere, but these bytes
 * keep the original strings. Returns 0 if the range is not known.
 */
static int
initial_environment(char **start, char **end)
{
	char		buf[4096];
	char	   *p;
	FILE	   *f = fopen("/proc/self/stat", "re");
	size_t		n;
	int			field;
	unsigned long long lo = 0,
				hi = 0;

	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the command name in parentheses, which may hold spaces. */
	p = strrchr(buf, ')');
	if (p == NULL)
		return 0;
	/* p points at ") S ...": field 3 starts after ") ". */
	for (field = 2; *p != '\0' && field < 50; p++)
		if (*p == ' ')
			field++;
	if (sscanf(p, "%llu %llu", &lo, &hi) != 2 || lo == 0 || hi <= lo)
		return 0;
	*start = (char *) (uintptr_t) lo;
	*end = (char *) (uintptr_t) hi;
	return 1;
}

void
server_datakey_forget_command_variable(void)
{
	static const char prefix[] = FE_DATAKEY_UNWRAP_VARIABLE "=";
	char	   *value = getenv(FE_DATAKEY_UNWRAP_VARIABLE);
	char	   *start;
	char	   *end;
	char	   *p;

	if (value != NULL)
		wipe(value, strlen(value));
	unsetenv(FE_DATAKEY_UNWRAP_VARIABLE);
	if (!initial_environment(&start, &end))
		return;
	for (p = start; p < end; p += strnlen(p, (size_t) (end - p)) + 1)
		if ((size_t) (end - p) >= sizeof(prefix) - 1 &&
			memcmp(p, prefix, sizeof(prefix) - 1) == 0)
			wipe(p, strnlen(p, (size_t) (end - p)));
}

int
server_datakey_command_origin(const char *setting)
{
	if (setting != NULL && setting[0] != '\0')
		return SERVER_DATAKEY_COMMAND_SETTING;
	if (getenv(FE_DATAKEY_UNWRAP_VARIABLE) != NULL)
		return SERVER_DATAKEY_COMMAND_ENVIRONMENT;
	return SERVER_DATAKEY_COMMAND_NONE;
}

static int
not_configured(fe_datakey_error **err)
{
	return fe_datakey_error_set(err, FE_DATAKEY_E_COMMAND_MISSING,
								"data encryption key unwrap command not configured",
								"pg_control says the cluster is encrypted, but neither " FE_DATAKEY_UNWRAP_SETTING
								" nor the environment variable " FE_DATAKEY_UNWRAP_VARIABLE
								" is set.",
								"Set " FE_DATAKEY_UNWRAP_SETTING
								" in postgresql.conf to the command that "
								"writes the key to standard output (\"-\" if it is stored without wrapping).");
}

int
server_datakey_load_key(const char *datadir, unsigned encryption_version,
						unsigned key_bits, const char *setting,
						int timeout_seconds,
						fe_datakey_interrupt_fn interrupted,
						fe_datakey_error **err)
{
	fe_datakey_key *key;
	const char *command;
	const char *origin;

	/* pg_control decides; the files must agree with it. */
	if (!fe_datakey_store_check_state(datadir, encryption_version, key_bits,
									  err))
		return 0;
	if (encryption_version == 0)
		return 1;

	switch (server_datakey_command_origin(setting))
	{
		case SERVER_DATAKEY_COMMAND_SETTING:
			command = setting;
			origin = FE_DATAKEY_UNWRAP_SETTING;
			break;
		case SERVER_DATAKEY_COMMAND_ENVIRONMENT:
			command = getenv(FE_DATAKEY_UNWRAP_VARIABLE);
			origin = FE_DATAKEY_UNWRAP_VARIABLE;
			break;
		default:
			return not_configured(err);
	}
	if (!fe_datakey_command_validate(FE_DATAKEY_ROLE_UNWRAP, command, origin,
									 err))
		return 0;

	fe_datakey_set_interrupt_check(interrupted);
	key = fe_datakey_store_load(datadir, command, timeout_seconds, err);
	fe_datakey_set_interrupt_check(NULL);
	/* Children must not inherit the command: it can name key stores. */
	server_datakey_forget_command_variable();
	if (key == NULL)
	{
		add_terminal_hint(err);
		return 0;
	}
	fe_datakey_key_free(loaded_key);
	loaded_key = key;
	loaded_by = getpid();
	return 1;
}

void
server_datakey_unload_key(void)
{
	fe_datakey_key_free(loaded_key);	/* wipes the key's memory */
	loaded_key = NULL;
}

int
server_datakey_key_loaded(void)
{
	return loaded_key != NULL && loaded_by == getpid();
}

const fe_datakey_key *
server_datakey_key(void)
{
	return server_datakey_key_loaded() ? loaded_key : NULL;
}

int
server_datakey_key_bits(void)
{
	return server_datakey_key_loaded() ? fe_datakey_key_bits(loaded_key) : 0;
}
