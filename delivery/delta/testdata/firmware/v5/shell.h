/* Service console: command table run from the debug UART or from an LwM2M Execute. */
#ifndef SHELL_H
#define SHELL_H

int shell_exec(const char *line);
void shell_boot_script(void);

#endif
