package ssh

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// keyCache parses each key file once per Client, so an encrypted key's
// passphrase is asked for at most once per run even across re-dials.
type keyCache struct {
	mu      sync.Mutex
	signers map[string]gossh.Signer
}

func (k *keyCache) signer(path, passphraseEnv string, o Options) (gossh.Signer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s, ok := k.signers[path]; ok {
		return s, nil
	}
	s, err := loadSigner(path, passphraseEnv, o)
	if err != nil {
		return nil, err
	}
	if k.signers == nil {
		k.signers = map[string]gossh.Signer{}
	}
	k.signers[path] = s
	return s, nil
}

func loadSigner(path, passphraseEnv string, o Options) (gossh.Signer, error) {
	what := "key file " + path
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &CredentialsError{What: what, Err: err}
	}
	s, err := gossh.ParsePrivateKey(data)
	if err == nil {
		return s, nil
	}
	var missing *gossh.PassphraseMissingError
	if !errors.As(err, &missing) {
		return nil, &CredentialsError{What: what, Err: fmt.Errorf("not a usable private key: %w", err)}
	}
	var pass string
	if passphraseEnv != "" {
		pass = o.Getenv(passphraseEnv)
	}
	if pass == "" && o.Prompt != nil {
		if pass, err = o.Prompt(fmt.Sprintf("Passphrase for %s: ", path)); err != nil {
			return nil, &CredentialsError{What: what, Err: fmt.Errorf("read passphrase: %w", err)}
		}
	}
	if pass == "" {
		hint := "set spec.ssh.passphraseEnv to the name of an environment variable holding it, or run interactively"
		if passphraseEnv != "" {
			hint = fmt.Sprintf("the environment variable %s (spec.ssh.passphraseEnv) is empty", passphraseEnv)
		}
		return nil, &CredentialsError{What: what, Err: fmt.Errorf("the key is encrypted and no passphrase was given: %s", hint)}
	}
	s, err = gossh.ParsePrivateKeyWithPassphrase(data, []byte(pass))
	if errors.Is(err, x509.IncorrectPasswordError) {
		return nil, &CredentialsError{What: what, Err: errors.New("wrong passphrase")}
	}
	if err != nil {
		return nil, &CredentialsError{What: what, Err: fmt.Errorf("decrypt: %w", err)}
	}
	return s, nil
}

// login is the authentication for one hop; close releases the agent
// connection once the handshake is over.
type login struct {
	user    string
	methods []gossh.AuthMethod
	offered []string
	closers []io.Closer
}

func (l *login) close() {
	for _, c := range l.closers {
		_ = c.Close()
	}
}

type loginSpec struct {
	user, keyFile, passphraseEnv, passwordEnv string
	agent                                     bool
}

func (k *keyCache) login(s loginSpec, o Options) (*login, error) {
	l := &login{user: s.user}
	var signers []gossh.Signer
	if s.keyFile != "" {
		signer, err := k.signer(s.keyFile, s.passphraseEnv, o)
		if err != nil {
			return nil, err
		}
		signers = append(signers, signer)
		l.offered = append(l.offered, "key file "+s.keyFile)
	}
	var agentClient agent.ExtendedAgent
	if s.agent {
		sock := o.Getenv("SSH_AUTH_SOCK")
		if sock == "" {
			return nil, &CredentialsError{What: "ssh-agent", Err: errors.New("spec.ssh.agent is true but SSH_AUTH_SOCK is not set")}
		}
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return nil, &CredentialsError{What: "ssh-agent", Err: fmt.Errorf("connect to SSH_AUTH_SOCK: %w", err)}
		}
		l.closers = append(l.closers, conn)
		agentClient = agent.NewClient(conn)
		l.offered = append(l.offered, "ssh-agent keys")
	}
	if len(signers) > 0 || agentClient != nil {
		// One publickey method with every key: the client library tries
		// each method name only once.
		l.methods = append(l.methods, gossh.PublicKeysCallback(func() ([]gossh.Signer, error) {
			all := signers
			if agentClient != nil {
				more, err := agentClient.Signers()
				if err != nil {
					return nil, fmt.Errorf("ssh-agent: %w", err)
				}
				all = append(append([]gossh.Signer(nil), signers...), more...)
			}
			return all, nil
		}))
	}
	if s.passwordEnv != "" {
		pw := o.Getenv(s.passwordEnv)
		if pw == "" {
			l.close()
			return nil, &CredentialsError{What: "password", Err: fmt.Errorf("the environment variable %s (spec.ssh.passwordEnv) is empty", s.passwordEnv)}
		}
		l.methods = append(l.methods,
			gossh.Password(pw),
			// PAM-backed servers ask through keyboard-interactive instead.
			gossh.KeyboardInteractive(func(_, _ string, questions []string, echos []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range questions {
					if !echos[i] {
						answers[i] = pw
					}
				}
				return answers, nil
			}))
		l.offered = append(l.offered, "password from $"+s.passwordEnv)
	}
	if len(l.methods) == 0 {
		return nil, &CredentialsError{What: "credentials", Err: errors.New("none configured: set spec.ssh.keyFile, agent or passwordEnv")}
	}
	return l, nil
}
