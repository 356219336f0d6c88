/**
 * The Python side of the kernel, run as `python3 -u -c KERNEL_DRIVER_SOURCE`. It lives in a string because
 * the runtime server is bundled into one JS file; there is no driver file on disk to point Python at.
 *
 * Wire protocol (see kernel.ts):
 * - fd 0 is /dev/null, so a cell calling input() gets EOFError instead of hanging.
 * - fd 1 carries what the cell (and its subprocesses) print to stdout, and results, display text and tracebacks;
 *   fd 2 what they print to stderr. The server joins the two as ipykernel's buffered streams reach a Jupyter
 *   client: each stream flushed 0.2 s after its first unflushed write, and both (stdout first) before a
 *   display, a result, a traceback and at the end of the cell. Those flush points are marked in both streams
 *   with the request's "sync" prefix, a number and ">\x1e".
 * - fd 3 carries requests, one JSON object a line: {"id", "code", "cwd", "marker", "sync"}; cwd null: stay.
 * - fd 4 carries replies, one JSON object a line: {"type": "ready", "interpreter", "ipython"} once, then
 *   {"type": "started", "id"} and {"type": "done", "id", "images", "markerWritten"} per cell. Before each "done" the driver writes the cell's marker to fds 1 and 2,
 *   so the server knows where the cell's output ends even though the two pipes are read independently.
 * - SIGINT interrupts the running cell (KeyboardInterrupt); between cells it is ignored, so the server sends it
 *   only after "started".
 *
 * Keep it compatible with Python 3.8 (older base images) and free of backticks and dollar-brace sequences
 * (it sits in a template literal).
 */
export const KERNEL_DRIVER_SOURCE: string = String.raw`
import ast, asyncio, base64, builtins, inspect, io, json, linecache, os, signal, sys, traceback, types

# Images beyond this many base64 characters in one cell are dropped with a note, so a loop of
# display() calls cannot build an unbounded reply line.
_MAX_IMAGE_CHARS_PER_CELL = 32 * 1024 * 1024
_CONTROL_IN_FD = 3
_CONTROL_OUT_FD = 4


def _berth_main():
    for fd in (_CONTROL_IN_FD, _CONTROL_OUT_FD):
        # Subprocesses of cells must not hold the control pipes open.
        os.set_inheritable(fd, False)
    control_in = io.open(_CONTROL_IN_FD, 'rb', buffering=0, closefd=True)
    control_out = io.open(_CONTROL_OUT_FD, 'wb', buffering=0, closefd=True)

    state = {'in_cell': False, 'images': [], 'image_chars': 0, 'sync': None, 'syncs': 0}

    def on_sigint(signum, frame):
        if state['in_cell']:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)

    def send(message):
        data = (json.dumps(message) + '\n').encode('utf-8')
        while data:
            written = os.write(control_out.fileno(), data)
            data = data[written:]

    def add_png(png):
        if isinstance(png, (bytes, bytearray)):
            png = base64.b64encode(bytes(png)).decode('ascii')
        if not isinstance(png, str) or not png:
            return
        if state['image_chars'] + len(png) > _MAX_IMAGE_CHARS_PER_CELL:
            sys.stdout.write('[Image omitted: the images of this cell exceed the size limit.]\n')
            return
        state['image_chars'] += len(png)
        state['images'].append('data:image/png;base64,' + png)

    def sync_point():
        # ipykernel flushes stdout, then stderr, before it publishes a display, a result or a traceback.
        flush_streams()
        if state['sync'] is None:
            return
        state['syncs'] += 1
        write_all((state['sync'] + str(state['syncs']) + '>\x1e').encode('ascii'))

    def emit_bundle(data):
        # Like the reference's Jupyter client: the text/plain form is always shown, as it is (the client joins
        # the outputs with nothing between them), and a PNG also becomes an image.
        sync_point()
        text = data.get('text/plain')
        if text is not None:
            sys.stdout.write(str(text))
            flush_streams()
        if 'image/png' in data:
            add_png(data['image/png'])

    run_cell, ipython = make_ipython_runner(emit_bundle, sync_point)
    if run_cell is None:
        run_cell = make_plain_runner(emit_bundle, sync_point)

    send({'type': 'ready', 'interpreter': sys.executable, 'ipython': ipython})

    while True:
        line = control_in.readline()
        if not line:
            return  # the server went away
        request = json.loads(line.decode('utf-8'))
        state['images'] = []
        state['image_chars'] = 0
        state['sync'] = request.get('sync')
        state['syncs'] = 0
        if request['cwd'] is not None:
            # Like the reference's os.chdir cell before a cell, whose failure it never shows: the
            # kernel then stays where it was.
            try:
                os.chdir(request['cwd'])
            except OSError:
                pass
        try:
            try:
                state['in_cell'] = True
                # The server sends SIGINT only after this, so an interrupt can never land before the cell.
                send({'type': 'started', 'id': request['id']})
                run_cell(request['code'])
            finally:
                state['in_cell'] = False
        except KeyboardInterrupt:
            pass
        except BaseException:
            # Only the driver's own failures get here; cells' exceptions are reported by the runner.
            traceback.print_exc(file=sys.stdout)
        state['in_cell'] = False
        marker_written = flush_and_mark(request['marker'])
        send({'type': 'done', 'id': request['id'], 'images': state['images'], 'markerWritten': marker_written})


def flush_streams():
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass


def write_all(data):
    # To stdout and to stderr; False when either is gone (the cell closed it).
    ok = True
    for fd in (1, 2):
        try:
            rest = data
            while rest:
                rest = rest[os.write(fd, rest):]
        except OSError:
            ok = False
    return ok


def flush_and_mark(marker):
    flush_streams()
    # False: the server then ends the cell on the reply alone.
    return write_all(marker.encode('ascii'))


def make_ipython_runner(emit_bundle, sync_point):
    try:
        from IPython.core.displayhook import DisplayHook
        from IPython.core.displaypub import DisplayPublisher
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets import Type
        from traitlets.config import Config
    except Exception:
        return None, False

    current = {'code': ''}

    class BerthDisplayHook(DisplayHook):
        # Results print like Jupyter's execute_result text: no "Out[n]:" prompt.
        def write_output_prompt(self):
            pass

        def quiet(self):
            # IPython looks for a trailing ';' in the last cell stored in history, and cells are not stored.
            check = getattr(DisplayHook, 'semicolon_at_end_of_expression', None)
            if check is None:
                return DisplayHook.quiet(self)
            try:
                return check(current['code'])
            except Exception:
                return False

        def write_format_data(self, format_dict, md_dict=None):
            emit_bundle(format_dict)

    class BerthDisplayPublisher(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, **kwargs):
            emit_bundle(data)

        def clear_output(self, wait=False):
            pass

    class BerthShell(InteractiveShell):
        displayhook_class = Type(BerthDisplayHook)
        display_pub_class = Type(BerthDisplayPublisher)

        def _showtraceback(self, etype, evalue, stb):
            sync_point()
            InteractiveShell._showtraceback(self, etype, evalue, stb)

    config = Config()
    # No history database: the home directory may be read-only, and cells are not replayed anyway.
    config.HistoryManager.enabled = False
    try:
        shell = BerthShell.instance(config=config)
    except Exception:
        traceback.print_exc()
        return None, False
    try:
        shell.run_line_magic('colors', 'nocolor')
    except Exception:
        pass

    def run_cell(code):
        current['code'] = code
        # store_history=False like the reference's execute_request.
        shell.run_cell(code, store_history=False)

    return run_cell, True


def make_plain_runner(emit_bundle, sync_point):
    main_module = types.ModuleType('__main__')
    main_module.__dict__['__builtins__'] = builtins
    # Cells see a clean __main__ (so pickle finds their classes), not the driver's globals.
    sys.modules['__main__'] = main_module
    namespace = main_module.__dict__
    loop = asyncio.new_event_loop()
    counter = [0]

    def display(*objs, **kwargs):
        for obj in objs:
            emit_bundle(format_object(obj))

    def format_object(obj):
        data = {'text/plain': repr(obj)}
        repr_png = getattr(obj, '_repr_png_', None)
        if callable(repr_png):
            try:
                png = repr_png()
            except Exception:
                png = None
            if png:
                data['image/png'] = png
        return data

    builtins.display = display

    def run_code(code_obj):
        result = eval(code_obj, namespace)
        # Top-level await compiles to a coroutine; a plain coroutine value is left alone.
        if code_obj.co_flags & inspect.CO_COROUTINE:
            result = loop.run_until_complete(result)
        return result

    def print_cell_exception(e):
        # Drop the driver's own leading frames, so the traceback starts in the cell like IPython's.
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == _DRIVER_FILENAME:
            tb = tb.tb_next
        sync_point()
        sys.stdout.write(''.join(traceback.format_exception(type(e), e, tb or e.__traceback__)))

    def run_cell(code):
        counter[0] += 1
        filename = '<cell-%d>' % counter[0]
        # Registered so tracebacks show the cell's source lines, also from later cells.
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        flags = getattr(ast, 'PyCF_ALLOW_TOP_LEVEL_AWAIT', 0)
        try:
            tree = ast.parse(code, filename, 'exec')
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr) and not code.rstrip().endswith(';'):
                last = ast.Expression(tree.body.pop().value)
            body = compile(tree, filename, 'exec', flags=flags)
            tail = compile(last, filename, 'eval', flags=flags) if last is not None else None
        except SyntaxError as e:
            sync_point()
            sys.stdout.write(''.join(traceback.format_exception_only(type(e), e)))
            return
        try:
            run_code(body)
            if tail is not None:
                value = run_code(tail)
                if value is not None:
                    namespace['_'] = value
                    emit_bundle(format_object(value))
        except SystemExit as e:
            # Like IPython: exit() in a cell reports itself but keeps the kernel.
            sync_point()
            sys.stdout.write(''.join(traceback.format_exception_only(type(e), e)))
        except BaseException as e:
            print_cell_exception(e)

    return run_cell


_DRIVER_FILENAME = _berth_main.__code__.co_filename
_berth_main()
`;
