package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// logFlags are the logging flags every command takes.
type logFlags struct {
	level  string
	format string
}

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "info", "log level: trace, debug, info, warn, error")
	fs.StringVar(&l.format, "log-format", "auto", "log format: auto (console on a terminal, else json), console, json")
}

// logger builds the process logger: readable on a terminal, JSON otherwise.
func (l *logFlags) logger(w io.Writer) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(l.level)
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("--log-level %q: %w", l.level, err)
	}
	console := l.format == "console"
	switch l.format {
	case "auto":
		f, ok := w.(*os.File)
		console = ok && isatty.IsTerminal(f.Fd())
	case "console", "json":
	default:
		return zerolog.Logger{}, fmt.Errorf("--log-format %q: want auto, console or json", l.format)
	}
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), nil
}
