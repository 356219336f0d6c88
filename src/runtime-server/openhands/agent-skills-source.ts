/**
 * The Python side of the agent_skills plugin: the helpers OpenHands' AgentSkills puts into the IPython
 * kernel (open_file, goto_line, scroll_down, scroll_up, search_dir, search_file, find_file, the parse_*
 * readers and file_editor), written for Berth with the reference's signatures, output and messages.
 *
 * It lives in a string for the reason the kernel driver does (driver-source.ts): the runtime server is
 * bundled into one JS file, and a string ships with it into every image (and into `berth runtime-server`
 * on a host) with nothing else to copy. agent-skills.ts loads it into the kernel as the module
 * berth_agentskills and star-imports it into the cells' namespace.
 *
 * file_editor does no file I/O of its own: it asks the runtime server's editor (the one behind the `edit`
 * action) over a pipe pair to the server, see agent-skills.ts, so both give the same results by
 * construction. The server runs as the sandbox user, like the kernel, so permissions apply the same way.
 *
 * Keep it compatible with Python 3.8 and free of backticks and dollar-brace sequences (it sits in a
 * template literal); a backtick the agent must see is written as \x60 in a Python string.
 */
export const AGENT_SKILLS_SOURCE: string = String.raw`
"""Berth's AgentSkills: file navigation, search, document readers and file_editor for the IPython kernel.

All helpers print their results, except file_editor, which returns them as a string.
"""
import json
import os
import threading
import uuid
from inspect import signature
from typing import List, Optional

CURRENT_FILE = None
CURRENT_LINE = 1
WINDOW = 100

# Only this many files may match in search_dir before the agent is asked to narrow the search.
_MAX_FILES_MATCHED = 100


def _print_error(message):
    print('ERROR: ' + message)


def _clamp(value, low, high):
    return max(low, min(value, high))


def _current_file_ok():
    if not CURRENT_FILE or not os.path.isfile(CURRENT_FILE):
        _print_error('No file open. Use the open_file function first.')
        return False
    return True


def _count_lines(path):
    # A file's lines as iterating over it counts them; an empty file still has one (empty) line.
    with open(path) as f:
        return max(1, sum(1 for _ in f))


def _header(path, total_lines):
    return '[File: %s (%d lines total)]\n' % (os.path.abspath(path), total_lines)


def _window(path, target_line, window, from_target=False):
    """The numbered lines around target_line (or from it, when from_target), with the more-lines notes.

    Moves CURRENT_LINE to target_line, clamped to the file.
    """
    global CURRENT_LINE
    with open(path) as f:
        text = f.read()
    if not text.endswith('\n'):
        text += '\n'
    lines = text.splitlines(True)
    total = len(lines)
    CURRENT_LINE = _clamp(target_line, 1, total)
    if from_target:
        first = max(1, CURRENT_LINE)
        last = min(total, CURRENT_LINE + window)
    else:
        half = max(1, window // 2)
        first = max(1, CURRENT_LINE - half)
        last = min(total, CURRENT_LINE + half)
    # A window that touches either end of the file is filled from the other side.
    if first == 1:
        last = min(total, first + window - 1)
    if last == total:
        first = max(1, last - window + 1)

    parts = []
    if first > 1:
        parts.append('(%d more lines above)\n' % (first - 1))
    else:
        parts.append('(this is the beginning of the file)\n')
    for number in range(first, last + 1):
        line = '%d|%s' % (number, lines[number - 1])
        if not line.endswith('\n'):
            line += '\n'
        parts.append(line)
    if last < total:
        parts.append('(%d more lines below)\n' % (total - last))
    else:
        parts.append('(this is the end of the file)\n')
    return ''.join(parts).rstrip()


def open_file(path: str, line_number: Optional[int] = 1, context_lines: Optional[int] = WINDOW) -> None:
    """Opens a file and shows a window of its lines, with line numbers, around a given line.

    Only a window of the file is shown (centred on line_number where the file allows); use scroll_down
    and scroll_up to move through the rest of it. The file becomes the current file of goto_line,
    scroll_down, scroll_up and search_file.

    Args:
        path: str: The path of the file to open; an absolute path is best.
        line_number: int: The line to centre the window on. Defaults to 1.
        context_lines: int: How many lines the window shows, at most 100. Defaults to 100.
    """
    global CURRENT_FILE, CURRENT_LINE
    if not os.path.isfile(path):
        _print_error('File %s not found.' % path)
        return
    CURRENT_FILE = os.path.abspath(path)
    total = _count_lines(CURRENT_FILE)
    if not isinstance(line_number, int) or line_number < 1 or line_number > total:
        _print_error('Line number must be between 1 and %d' % total)
        return
    CURRENT_LINE = line_number
    if context_lines is None or context_lines < 1:
        context_lines = WINDOW
    output = _header(CURRENT_FILE, total) + _window(CURRENT_FILE, CURRENT_LINE, _clamp(context_lines, 1, 100))
    if output.strip().endswith('more lines below)'):
        output += '\n[Use \x60scroll_down\x60 to view the next 100 lines of the file!]'
    print(output)


def goto_line(line_number: int) -> None:
    """Moves the window of the current file so that it shows the given line.

    Args:
        line_number: int: The line to move to.
    """
    global CURRENT_LINE
    if not _current_file_ok():
        return
    total = _count_lines(CURRENT_FILE)
    if not isinstance(line_number, int) or line_number < 1 or line_number > total:
        _print_error('Line number must be between 1 and %d.' % total)
        return
    CURRENT_LINE = _clamp(line_number, 1, total)
    print(_header(CURRENT_FILE, total) + _window(CURRENT_FILE, CURRENT_LINE, WINDOW))


def _scroll(lines):
    global CURRENT_LINE
    if not _current_file_ok():
        return
    total = _count_lines(CURRENT_FILE)
    CURRENT_LINE = _clamp(CURRENT_LINE + lines, 1, total)
    print(_header(CURRENT_FILE, total) + _window(CURRENT_FILE, CURRENT_LINE, WINDOW, from_target=True))


def scroll_down() -> None:
    """Moves the window of the current file down by 100 lines.

    Args:
        None
    """
    _scroll(WINDOW)


def scroll_up() -> None:
    """Moves the window of the current file up by 100 lines.

    Args:
        None
    """
    _scroll(-WINDOW)


def search_dir(search_term: str, dir_path: str = './') -> None:
    """Searches every file under a directory for a term, and prints each matching line.

    Files whose names start with a dot are skipped. Without dir_path, searches the current directory.

    Args:
        search_term: str: The text to look for (plain text, not a pattern).
        dir_path: str: The directory to search.
    """
    if not os.path.isdir(dir_path):
        _print_error('Directory %s not found' % dir_path)
        return
    matches = []
    for root, _dirs, files in os.walk(dir_path):
        for name in files:
            if name.startswith('.'):
                continue
            file_path = os.path.join(root, name)
            try:
                with open(file_path, 'r', errors='ignore') as f:
                    for number, line in enumerate(f, 1):
                        if search_term in line:
                            matches.append((file_path, number, line.strip()))
            except OSError:
                # A file this user may not read (or one that vanished) has no matches to show.
                continue
    if not matches:
        print('No matches found for "%s" in %s' % (search_term, dir_path))
        return
    files_matched = len(set(m[0] for m in matches))
    if files_matched > _MAX_FILES_MATCHED:
        print('More than %d files matched for "%s" in %s. Please narrow your search.' % (files_matched, search_term, dir_path))
        return
    print('[Found %d matches for "%s" in %s]' % (len(matches), search_term, dir_path))
    for file_path, number, line in matches:
        print('%s (Line %d): %s' % (file_path, number, line))
    print('[End of matches for "%s" in %s]' % (search_term, dir_path))


def search_file(search_term: str, file_path: Optional[str] = None) -> None:
    """Searches a file for a term, and prints each matching line with its number.

    Without file_path, searches the current file (the one open_file opened last).

    Args:
        search_term: str: The text to look for (plain text, not a pattern).
        file_path: str: The file to search.
    """
    if file_path is None:
        file_path = CURRENT_FILE
    if file_path is None:
        _print_error('No file specified or open. Use the open_file function first.')
        return
    if not os.path.isfile(file_path):
        _print_error('File %s not found.' % file_path)
        return
    matches = []
    with open(file_path) as f:
        for number, line in enumerate(f, 1):
            if search_term in line:
                matches.append((number, line.strip()))
    if not matches:
        print('[No matches found for "%s" in %s]' % (search_term, file_path))
        return
    print('[Found %d matches for "%s" in %s]' % (len(matches), search_term, file_path))
    for number, line in matches:
        print('Line %d: %s' % (number, line))
    print('[End of matches for "%s" in %s]' % (search_term, file_path))


def find_file(file_name: str, dir_path: str = './') -> None:
    """Finds the files under a directory whose names contain file_name, and prints their paths.

    Args:
        file_name: str: The name (or part of the name) to look for.
        dir_path: str: The directory to search.
    """
    if not os.path.isdir(dir_path):
        _print_error('Directory %s not found' % dir_path)
        return
    found = []
    for root, _dirs, files in os.walk(dir_path):
        for name in files:
            if file_name in name:
                found.append(os.path.join(root, name))
    if not found:
        print('[No matches found for "%s" in %s]' % (file_name, dir_path))
        return
    print('[Found %d matches for "%s" in %s]' % (len(found), file_name, dir_path))
    for path in found:
        print(path)
    print('[End of matches for "%s" in %s]' % (file_name, dir_path))


# --- document readers -------------------------------------------------------------------------------
# The reference's image has these libraries; a Berth image has them only if its base (or the agent) put
# them there. Each reader imports its library when called, and says plainly what is missing.


def _import_first(names):
    import importlib

    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def _missing_library(function, packages, pip_name):
    _print_error(
        '%s needs the Python package %s, which is not installed in this sandbox. '
        'Install it (for example with %%pip install %s in this kernel) and call %s again.'
        % (function, packages, pip_name, function)
    )


def parse_pdf(file_path: str) -> None:
    """Reads a PDF file and prints its text, page by page.

    Args:
        file_path: str: The path of the PDF file.
    """
    pdf = _import_first(['PyPDF2', 'pypdf'])
    if pdf is None:
        _missing_library('parse_pdf', 'PyPDF2 (or pypdf)', 'pypdf')
        return
    print('[Reading PDF file from %s]' % file_path)
    reader = pdf.PdfReader(file_path)
    text = ''
    for index, page in enumerate(reader.pages):
        text += '@@ Page %d @@\n' % (index + 1) + page.extract_text() + '\n\n'
    print(text.strip())


def parse_docx(file_path: str) -> None:
    """Reads a Word (DOCX) file and prints the text of its paragraphs.

    Args:
        file_path: str: The path of the DOCX file.
    """
    docx = _import_first(['docx'])
    if docx is None:
        _missing_library('parse_docx', 'python-docx', 'python-docx')
        return
    print('[Reading DOCX file from %s]' % file_path)
    document = docx.Document(file_path)
    text = ''
    for index, paragraph in enumerate(document.paragraphs):
        text += '@@ Page %d @@\n' % (index + 1) + paragraph.text + '\n\n'
    print(text)


def parse_latex(file_path: str) -> None:
    """Reads a LaTeX file and prints it as plain text.

    Args:
        file_path: str: The path of the LaTeX file.
    """
    latex2text = _import_first(['pylatexenc.latex2text'])
    if latex2text is None:
        _missing_library('parse_latex', 'pylatexenc', 'pylatexenc')
        return
    print('[Reading LaTex file from %s]' % file_path)
    with open(file_path) as f:
        source = f.read()
    print(latex2text.LatexNodes2Text().latex_to_text(source).strip())


def parse_pptx(file_path: str) -> None:
    """Reads a PowerPoint (PPTX) file and prints the text of each slide.

    Args:
        file_path: str: The path of the PPTX file.
    """
    pptx = _import_first(['pptx'])
    if pptx is None:
        _missing_library('parse_pptx', 'python-pptx', 'python-pptx')
        return
    print('[Reading PowerPoint file from %s]' % file_path)
    try:
        presentation = pptx.Presentation(str(file_path))
        text = []
        for index, slide in enumerate(presentation.slides):
            text.append('@@ Slide %d @@' % (index + 1))
            for shape in slide.shapes:
                if hasattr(shape, 'text'):
                    text.append(shape.text)
        print('\n'.join(text))
    except Exception as e:
        print('Error reading PowerPoint file: %s' % e)


# --- file_editor --------------------------------------------------------------------------------------
# Requests go to the runtime server as JSON lines on fd 5, replies come back on fd 6, each carrying the
# request's id. A call interrupted while it waits leaves its reply in the pipe; the next call skips it.

_REQUEST_FD = 5
_REPLY_FD = 6
_call_lock = threading.Lock()
_call_state = {'last_id': 0, 'pending': []}


def _read_reply_line():
    pending = _call_state['pending']
    while True:
        if pending and b'\n' in pending[-1]:
            data = b''.join(pending)
            line, rest = data.split(b'\n', 1)
            pending[:] = [rest] if rest else []
            return line
        chunk = os.read(_REPLY_FD, 1 << 16)
        if not chunk:
            raise RuntimeError('file_editor: the runtime server closed its channel to this kernel')
        pending.append(chunk)


def _server_call(name, args):
    with _call_lock:
        _call_state['last_id'] += 1
        call_id = _call_state['last_id']
        data = (json.dumps({'id': call_id, 'call': name, 'args': args}, default=str) + '\n').encode('utf-8', 'surrogatepass')
        try:
            while data:
                data = data[os.write(_REQUEST_FD, data):]
            while True:
                reply = json.loads(_read_reply_line().decode('utf-8'))
                if reply.get('id') == call_id:
                    return reply
        except OSError as e:
            raise RuntimeError('file_editor cannot reach the Berth runtime server: %s' % e) from None


def file_editor(
    command: str,
    path: str,
    file_text: Optional[str] = None,
    view_range: Optional[List[int]] = None,
    old_str: Optional[str] = None,
    new_str: Optional[str] = None,
    insert_line: Optional[int] = None,
    enable_linting: bool = False,
) -> str:
    """Views, creates and edits files: the str_replace editor, with the results of the edit action.

    Commands:
        view: shows a file with line numbers (cat -n style), or a directory two levels deep;
            view_range=[start, end] limits a file to those lines (end -1 means to the end).
        create: writes file_text to a new file at path; an existing file is not overwritten.
        str_replace: replaces old_str, which must occur exactly once in the file, by new_str.
        insert: inserts new_str after line insert_line (0 inserts at the top).
        undo_edit: restores the file as it was before its last edit.

    Args:
        command: str: One of view, create, str_replace, insert, undo_edit.
        path: str: The absolute path of the file or directory.
        file_text: str: The text of the new file (create).
        view_range: list[int]: The first and last line to show (view).
        old_str: str: The exact text to replace (str_replace).
        new_str: str: The replacement (str_replace) or the text to insert (insert).
        insert_line: int: The line after which new_str is inserted (insert).
        enable_linting: bool: Accepted for compatibility; Berth does not lint edits.

    Returns:
        The result as a JSON object between <oh_aci_output_ID> and </oh_aci_output_ID> lines; its
        formatted_output_and_error field is the text the edit action would show, ERROR: first on failure.
    """
    args = {
        'command': command,
        'path': os.fspath(path) if isinstance(path, os.PathLike) else path,
        'file_text': file_text,
        'view_range': list(view_range) if isinstance(view_range, tuple) else view_range,
        'old_str': old_str,
        'new_str': new_str,
        'insert_line': insert_line,
    }
    reply = _server_call('file_editor', args)
    if 'error' in reply:
        raise RuntimeError('file_editor failed in the runtime server: %s' % reply['error'])
    result = reply['result']
    if 'oserror' in result:
        # What the reference lets escape: a path it may not even look at (e.g. under /root).
        e = result['oserror']
        raise OSError(e['errno'], e['strerror'], e['filename'])
    fields = result['fields']
    formatted = 'ERROR:\n' + fields['error'] if fields.get('error') else fields.get('output')
    marker = uuid.uuid4().hex
    body = ','.join('"%s": %s' % (key, json.dumps(value)) for key, value in fields.items())
    body += ', "formatted_output_and_error": ' + json.dumps(formatted)
    return '<oh_aci_output_%s>\n{%s}\n</oh_aci_output_%s>' % (marker, body, marker)


__all__ = [
    'open_file',
    'goto_line',
    'scroll_down',
    'scroll_up',
    'search_dir',
    'search_file',
    'find_file',
    'parse_pdf',
    'parse_docx',
    'parse_latex',
    'parse_pptx',
]


def _documentation(names):
    text = ''
    for name in names:
        function = globals()[name]
        doc = '\n'.join(line.strip() for line in (function.__doc__ or '').split('\n') if line.strip())
        doc = '\n'.join('    ' + line for line in doc.split('\n'))
        text += '%s%s:\n%s\n\n' % (name, signature(function), doc)
    return text


# Signatures and docstrings of the helpers, for an agent's prompt (the reference builds the same text).
DOCUMENTATION = _documentation(__all__)

__all__ += ['file_editor']
`;
