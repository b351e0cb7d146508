#!/bin/sh
# tui.crschat: the CRS chat in the shell (issue 19): a person types `crs.chat` turns and sees,
# for each, the act the planner chose, the proposals it rejected and the preference state (in
# the log, and in the plugin's chat view: `view chat`);
# the chat continues by typing (the shell's talk mode, session= underneath) and is replayed from the store (crs.replay), also after the
# shell is quit and reopened on the same workspace.
. "$(dirname "$0")/lib.sh"
tui_need_plugin crs
tui_start 120 36
tui_line 'crs.chat data=demo model=macrs I would like something Comedy'
tui_wait 'you: +I would like something Comedy' 20
tui_wait 'crs: ' 5
tui_wait '  \[(ask|recommend|chit-chat)\] scores ask -?[0-9.]+ · recommend -?[0-9.]+ · chit-chat -?[0-9.]+' 5
tui_wait '  rejected: (ask|recommend|chit-chat) "' 5
tui_wait '  state: wanted Comedy; unwanted -; rejected 0 items; [0-9]+ candidates' 5
tui_wait 'detail = \{"policy":"macrs"' 5
tui_wait '… \([0-9]+ characters; Lua has it whole\)' 5
tui_wait 'chat 1 \(continue: crs.chat session=1' 5
# talk mode: the shell now takes each typed line as the next turn, the prompt says so
tui_wait 'talking: each line you type continues `crs.chat session=1`' 5
tui_wait '^crs.chat session=1>' 5
tui_line 'not Horror please, and no "quotes" = trouble'
tui_wait 'you: +not Horror please, and no "quotes" = trouble' 20
tui_wait '  state: wanted Comedy; unwanted Horror;' 5
# /COMMAND runs a command without leaving; an empty line returns to the command prompt
tui_line '/sql SELECT count(*) AS n_user_turns FROM dialogues WHERE role = '"'user'"' AND turn >= 0'
tui_wait 'n_user_turns' 10
tui_wait '^crs.chat session=1>' 5
tui_keys Enter
tui_wait 'back to commands' 5
tui_wait '^reclab>' 5
# the talk-mode habit at the command prompt: /COMMAND is the command
tui_line '/help talk'
tui_wait 'usage: talk COMMAND' 5
# the chat view: the turns, each system turn with its act, rejected proposals and state
tui_line 'view chat'
tui_wait 'CRS chat' 10
tui_wait 'you: I would like something Comedy' 5
tui_wait 'crs \[(ask|recommend|chit-chat)\]: ' 5
tui_wait '  rejected: (ask|recommend|chit-chat): ' 5
tui_wait '  state: wanted \["Comedy"\], unwanted \["Horror"\], rejected items' 5
tui_quit
# a new shell on the same workspace: the chat is replayed from the store
# (a second session keeps the tmux server alive while the first one is replaced)
tmx new-session -d -s keep >/dev/null 2>&1
tmx kill-session -t t >/dev/null 2>&1
tui_start 120 36
tui_line 'crs.replay run=1'
tui_wait 'user +I would like something Comedy' 20
tui_wait 'user +not Horror please, and no "quotes" = trouble' 5
# the act follows the system's words: on the same row, or on the next when the line wraps
tui_wait '(system .*|│ +)\[(ask|recommend|chit-chat)\]' 5
tui_wait 'state: \{"wanted":\["Comedy"\],"unwanted":\["Horror"\]' 5
tui_quit
echo "ok tui.crschat"
