# bash completion for fsdpsim (installed by meson to share/bash-completion/completions/fsdpsim).
# Subcommands, each subcommand's long options (read from its --help, so they never drift),
# shipped model and topology names for --model/-m and --topology/-t (from `fsdpsim list`), and
# files. Cost: one `fsdpsim ... --help` or `fsdpsim list` per completion, a few milliseconds.
_fsdpsim() {
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion || return
    else
        cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
        words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
    fi
    local prog=${words[0]} sub=""
    local subcommands="collective scale validate kernels compare list"
    if [ "$cword" -gt 1 ] && [[ " $subcommands " == *" ${words[1]} "* ]]; then
        sub=${words[1]}
    fi
    case $prev in
    -m | --model)
        COMPREPLY=($(compgen -W "$("$prog" list models 2>/dev/null | awk '{print $1}')" -- "$cur")
                   $(compgen -f -- "$cur"))
        return ;;
    -t | --topology)
        COMPREPLY=($(compgen -W "$("$prog" list topologies 2>/dev/null | awk '{print $1}')" -- "$cur")
                   $(compgen -f -- "$cur"))
        return ;;
    esac
    if [ "$sub" = list ]; then
        COMPREPLY=($(compgen -W "models topologies" -- "$cur"))
        return
    fi
    if [[ $cur == -* ]]; then
        local opts
        opts=$("$prog" $sub --help 2>/dev/null | grep -o -- '--[a-z0-9-]*' | sort -u)
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi
    if [ "$cword" -eq 1 ]; then
        COMPREPLY=($(compgen -W "$subcommands" -- "$cur"))
        return
    fi
    COMPREPLY=($(compgen -f -- "$cur"))
}
complete -F _fsdpsim fsdpsim
