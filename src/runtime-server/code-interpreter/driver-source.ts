/**
 * The Python side of one code-interpreter context, run as `python3 -u -c CONTEXT_DRIVER_SOURCE`. Unlike
 * the OpenHands kernel's driver (core/python/driver-source.ts), which renders a cell into one text as a
 * Jupyter client shows it, this one reports every output as its own message in the shapes E2B's code
 * interpreter streams: stdout, stderr, result (per MIME type, `is_main_result` for the cell's value),
 * error (name, value, traceback) and number_of_executions.
 *
 * Wire protocol (see contexts.ts):
 * - fd 0 is /dev/null (input() gets EOFError). fds 1 and 2 carry only what subprocesses write there; the
 *   server relays it as stdout and stderr. Python-level prints become messages on fd 4.
 * - fd 3: requests, one JSON a line: {"id", "code", "env_vars"}.
 * - fd 4: {"type": "ready"} once, then per request {"id", "msg": <E2B message>} and {"id", "done": true}.
 * - SIGINT interrupts the running cell (a KeyboardInterrupt error); between cells it is ignored.
 *
 * Runs cells through IPython when the image has it (magics, rich display), else through plain exec.
 * Keep it compatible with Python 3.8 and free of backticks and dollar-brace sequences.
 */
export const CONTEXT_DRIVER_SOURCE: string = String.raw`
import ast, io, json, os, signal, sys, time, traceback

_IN_FD = 3
_OUT_FD = 4
# MIME types as E2B's code interpreter names them in a result message; others go under their MIME name.
_MIME_FIELDS = {
    'text/plain': 'text', 'text/html': 'html', 'text/markdown': 'markdown', 'image/svg+xml': 'svg',
    'image/png': 'png', 'image/jpeg': 'jpeg', 'application/pdf': 'pdf', 'text/latex': 'latex',
    'application/json': 'json', 'application/javascript': 'javascript',
}

for _fd in (_IN_FD, _OUT_FD):
    os.set_inheritable(_fd, False)
_control_in = io.open(_IN_FD, 'rb', buffering=0, closefd=True)
_state = {'id': None, 'in_cell': False}


def _send(message):
    data = (json.dumps(message, default=str) + '\n').encode('utf-8')
    while data:
        data = data[os.write(_OUT_FD, data):]


def _emit(msg):
    _send({'id': _state['id'], 'msg': msg})


class _Stream(io.TextIOBase):
    """Line-buffered, like a Jupyter kernel's streams: whole lines go out as they are written, a partial
    line at a flush, before a result or an error, and at the end of the cell."""

    def __init__(self, name):
        self._name = name
        self._buf = ''

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError('write() argument must be str, not ' + type(text).__name__)
        self._buf += text
        cut = self._buf.rfind('\n') + 1
        if cut:
            out, self._buf = self._buf[:cut], self._buf[cut:]
            _emit({'type': self._name, 'text': out, 'timestamp': time.time()})
        return len(text)

    def flush(self):
        if self._buf:
            out, self._buf = self._buf, ''
            _emit({'type': self._name, 'text': out, 'timestamp': time.time()})

    def fileno(self):
        # Code that writes to sys.stdout's descriptor lands on fd 1, which the server relays too.
        return 1 if self._name == 'stdout' else 2

    @property
    def encoding(self):
        return 'utf-8'


def _flush_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _result(data, is_main):
    _flush_streams()
    msg = {'type': 'result', 'is_main_result': is_main}
    for mime, value in data.items():
        msg[_MIME_FIELDS.get(mime, mime)] = value
    _emit(msg)


def _error(etype, evalue, tb_text):
    _flush_streams()
    _emit({'type': 'error', 'name': etype.__name__ if etype else 'Error', 'value': str(evalue), 'traceback': tb_text})


def _on_sigint(signum, frame):
    if _state['in_cell']:
        raise KeyboardInterrupt


def _ipython_runner():
    try:
        from IPython.core.interactiveshell import InteractiveShell
        from IPython.core.displayhook import DisplayHook
        from IPython.core.displaypub import DisplayPublisher
        from traitlets import Type
        from traitlets.config import Config
    except Exception:
        return None

    class _Hook(DisplayHook):
        # The value of the cell's last expression: the main result (no "Out[n]:" prompt is printed).
        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            _result(format_dict, True)

        def finish_displayhook(self):
            pass

    class _Publisher(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, **kwargs):
            _result(data, False)

        def clear_output(self, wait=False):
            pass

    class _Shell(InteractiveShell):
        displayhook_class = Type(_Hook)
        display_pub_class = Type(_Publisher)

    config = Config()
    # No history database: the home directory may be read-only (the count is kept all the same).
    config.HistoryManager.enabled = False
    shell = _Shell.instance(config=config, colors='NoColor')

    def showtraceback(etype, evalue, stb):
        _error(etype, evalue, '\n'.join(stb))

    shell._showtraceback = showtraceback

    def run(code):
        shell.run_cell(code, store_history=True)
        return shell.execution_count - 1

    return run


def _plain_runner():
    namespace = {'__name__': '__main__'}
    count = [0]

    def run(code):
        count[0] += 1
        try:
            tree = ast.parse(code, '<cell>', 'exec')
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr):
                last = ast.Expression(tree.body.pop().value)
            exec(compile(tree, '<cell>', 'exec'), namespace)
            if last is not None:
                value = eval(compile(last, '<cell>', 'eval'), namespace)
                if value is not None:
                    _result({'text/plain': repr(value)}, True)
        except BaseException as e:
            _error(type(e), e, traceback.format_exc())
        return count[0]

    return run


def _main():
    signal.signal(signal.SIGINT, _on_sigint)
    sys.stdout = _Stream('stdout')
    sys.stderr = _Stream('stderr')
    run = _ipython_runner() or _plain_runner()
    _send({'type': 'ready'})
    while True:
        line = _control_in.readline()
        if not line:
            return
        request = json.loads(line.decode('utf-8'))
        _state['id'] = request['id']
        saved = {}
        for key, value in (request.get('env_vars') or {}).items():
            saved[key] = os.environ.get(key)
            os.environ[key] = str(value)
        try:
            try:
                _state['in_cell'] = True
                count = run(request['code'])
            finally:
                _state['in_cell'] = False
                _flush_streams()
            _emit({'type': 'number_of_executions', 'execution_count': count})
        except KeyboardInterrupt:
            _error(KeyboardInterrupt, '', 'KeyboardInterrupt')
        except BaseException as e:
            _error(type(e), e, traceback.format_exc())
        finally:
            # Variables for this execution only, as E2B's server does.
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        _send({'id': request['id'], 'done': True})


_main()
`;
