package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"installer.dev/installer/pkg/scripts"
)

// ansiblePlaybook is the same remote steps as an Ansible play: the facts script, the node files'
// directories, the files (copy compares checksums, so a converged run writes none), the command
// when one changed.
const ansiblePlaybook = `- hosts: all
  gather_facts: false
  tasks:
    - name: facts
      ansible.builtin.shell: "{{ lookup('ansible.builtin.file', facts_script) }}"
      args: {executable: /bin/sh}
      changed_when: false
    - name: directories
      ansible.builtin.file: {path: "{{ host_root }}/{{ item }}", state: directory, mode: "0755"}
      loop: "{{ node_dirs }}"
    - name: node files
      ansible.builtin.copy:
        src: "{{ sources }}/{{ inventory_hostname }}/{{ item.rel }}"
        dest: "{{ host_root }}/{{ item.rel }}"
        mode: "{{ item.mode }}"
        owner: root
        group: root
      loop: "{{ node_files }}"
      register: copied
    - name: command
      ansible.builtin.command: {argv: "{{ command }}"}
      when: copied.changed
`

// writeAnsible lays out the playbook, inventory and configuration for the job's hosts (forks =
// hosts, pipelining on, ControlPersist as Ansible's default, host keys checked strictly) and
// returns the directory and the control sockets' directory.
func writeAnsible(j *job) (dir, controlDir string, err error) {
	dir = filepath.Join(j.Dir, fmt.Sprintf("ansible-%d", len(j.Hosts)))
	controlDir = filepath.Join(j.Dir, "cp")
	for _, d := range []string{filepath.Join(dir, "group_vars"), controlDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", "", err
		}
	}
	cfg := fmt.Sprintf(`[defaults]
inventory = %s
forks = %d
host_key_checking = True
gathering = explicit
interpreter_python = /usr/bin/python3
retry_files_enabled = False
[ssh_connection]
pipelining = True
ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes
control_path_dir = %s
`, filepath.Join(dir, "inventory.ini"), len(j.Hosts), j.KnownHosts, controlDir)
	var inv strings.Builder
	inv.WriteString("[nodes]\n")
	for _, h := range j.Hosts {
		fmt.Fprintf(&inv, "%s ansible_host=%s ansible_port=%d host_root=%s\n", h.Name, h.Address, h.Port, h.Root)
	}
	dirs := map[string]bool{}
	type file struct {
		Rel  string `json:"rel"`
		Mode string `json:"mode"`
	}
	var files []file
	for _, f := range j.Files {
		dirs[filepath.Dir(f.Rel)] = true
		files = append(files, file{Rel: f.Rel, Mode: fmt.Sprintf("%04o", f.Mode)})
	}
	var dirList []string
	for d := range dirs {
		dirList = append(dirList, d)
	}
	sort.Strings(dirList)
	factsScript := filepath.Join(dir, "facts.sh")
	vars := map[string]any{
		"ansible_user": "root", "ansible_ssh_private_key_file": j.KeyFile, "sources": j.Sources,
		"facts_script": factsScript, "node_dirs": dirList, "node_files": files,
		"command": commandLine("{{ host_root }}"),
	}
	varsJSON, err := json.MarshalIndent(vars, "", "  ")
	if err != nil {
		return "", "", err
	}
	for name, content := range map[string]string{
		"ansible.cfg": cfg, "inventory.ini": inv.String(), "site.yml": ansiblePlaybook,
		"group_vars/all.yml": string(varsJSON), "facts.sh": scripts.Facts.Body,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return "", "", err
		}
	}
	return dir, controlDir, nil
}
